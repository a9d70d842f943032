"""The orchestrator's handlers and deadline timer against a real SQLite database."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    CancelPayment,
    CancelProductReservation,
    OrderCreated,
    OrderUpdated,
    ProcessPayment,
    ReserveProduct,
)
from ordersaga.contracts.statuses import (
    OrderStatus,
    PaymentStatus,
    StockStatus,
)
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.envelope import Trace, new_traceparent
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.clock import ProcessClock
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.store import StaleSaga
from ordersaga.saga.timer import fire_due_deadlines
from ordersaga.services.orchestrator.tables import metadata, outbox, saga_history, saga_instances
from ordersaga.services.orchestrator.wiring import place_order_runner, spec
from tests.saga_fixtures import (
    Sent,
    SetClock,
    an_order,
    applied,
    deliver,
    paid,
    refunded,
    released,
    reserved,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(reserve_timeout=30, payment_timeout=20, compensation_timeout=10)
INSUFFICIENT_FUNDS = "insufficient funds: balance 100.00, amount 150.00"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "orchestrator.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> SetClock:
    return SetClock(NOW)


@pytest.fixture
def runner(clock: SetClock) -> SagaRunner:
    return place_order_runner(SETTINGS, clock=ProcessClock(clock))


def order(user: int = 1, product: int = 3, quantity: int = 3) -> OrderCreated:
    return an_order(user, product, quantity)


async def saga_row(engine: AsyncEngine, order_id: UUID) -> Any:
    async with engine.connect() as conn:
        query = select(saga_instances).where(saga_instances.c.saga_id == str(order_id))
        return (await conn.execute(query)).one_or_none()


async def history(engine: AsyncEngine, order_id: UUID) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                saga_history.c.event,
                saga_history.c.outcome,
                saga_history.c.from_status,
                saga_history.c.to_status,
                saga_history.c.step,
            )
            .where(saga_history.c.saga_id == str(order_id))
            .order_by(saga_history.c.seq)
        )
        return [tuple(r) for r in rows]


async def take_outbox(engine: AsyncEngine) -> Sent:
    """The messages the timer wrote to the outbox, decoded; the outbox is emptied."""
    async with engine.begin() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
        await conn.execute(delete(outbox))
    sent = Sent()
    for row in rows:
        sent.messages.append((row.topic, decode(row.topic, row.value)))
        sent.headers.append(json.loads(row.headers))
    return sent


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_an_order_in_stock_and_paid_for_completes(
    engine: AsyncEngine, runner: SagaRunner, clock: SetClock
) -> None:
    created = order()

    first = await deliver(engine, runner, topics.ORDER_CREATED, created)
    [(_, reserve)] = first.messages
    assert first.topics == [topics.RESERVE_PRODUCT]
    assert reserve == ReserveProduct(**created.model_dump())
    clock.now = NOW + timedelta(seconds=5)
    second = await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))
    [(_, pay)] = second.messages
    assert isinstance(pay, ProcessPayment)
    assert pay.amount == Decimal("150.00")
    third = await deliver(engine, runner, topics.PAYMENT_PROCESSED, paid(created))

    [(topic, update)] = third.messages
    assert topic == topics.ORDER_UPDATED
    assert isinstance(update, OrderUpdated)
    assert (update.orderID, update.status) == (created.orderID, OrderStatus.ORDER_COMPLETED)
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.step, as_utc(row.deadline)) == (
        "NOTIFYING",
        2,
        NOW + timedelta(seconds=15),
    )
    ack = applied(created, OrderStatus.ORDER_COMPLETED)
    assert (await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, ack)).messages == []
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.step, row.deadline, row.version) == ("COMPLETED", 2, None, 3)
    assert json.loads(row.data)["amount"] == "150.00"
    assert row.saga_type == "place-order"
    assert await history(engine, created.orderID) == [
        ("start", "started", None, "RUNNING", 0),
        ("product-reserved", "advanced", "RUNNING", "RUNNING", 1),
        ("payment-processed", "completed", "RUNNING", "NOTIFYING", 2),
        ("order-status-applied", "acknowledged", "NOTIFYING", "COMPLETED", 2),
    ]


async def test_payment_rejected_gives_the_stock_back_then_cancels_the_order(
    engine: AsyncEngine, runner: SagaRunner
) -> None:
    created = order()
    await deliver(engine, runner, topics.ORDER_CREATED, created)
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))

    rejected = paid(created, PaymentStatus.PAYMENT_REJECTED, INSUFFICIENT_FUNDS)
    compensating = await deliver(engine, runner, topics.PAYMENT_PROCESSED, rejected)
    [(_, cancel)] = compensating.messages
    assert isinstance(cancel, CancelProductReservation)
    assert (cancel.productID, cancel.quantity) == (created.productID, created.quantity)
    assert (await saga_row(engine, created.orderID)).status == "COMPENSATING"
    cancelled = await deliver(
        engine, runner, topics.PRODUCT_RESERVATION_CANCELLED, released(created)
    )

    [(_, update)] = cancelled.messages
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.ORDER_CANCELLED
    assert update.reason == f"payment: {INSUFFICIENT_FUNDS}"
    ack = applied(created, OrderStatus.ORDER_CANCELLED)
    await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, ack)
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.reason, row.deadline) == (
        "CANCELLED",
        f"payment: {INSUFFICIENT_FUNDS}",
        None,
    )
    assert [e[:2] for e in await history(engine, created.orderID)] == [
        ("start", "started"),
        ("product-reserved", "advanced"),
        ("payment-processed", "compensating"),
        ("product-reservation-cancelled", "cancelled"),
        ("order-status-applied", "acknowledged"),
    ]


async def test_a_second_order_created_does_not_start_a_second_saga(
    engine: AsyncEngine, runner: SagaRunner
) -> None:
    created = order()
    await deliver(engine, runner, topics.ORDER_CREATED, created)
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))

    again = await deliver(engine, runner, topics.ORDER_CREATED, created)

    assert again.messages == []
    async with engine.connect() as conn:
        assert len((await conn.execute(select(saga_instances))).all()) == 1
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.step, row.version) == ("RUNNING", 1, 1)
    assert (await history(engine, created.orderID))[-1] == (
        "start",
        "ignored",
        "RUNNING",
        "RUNNING",
        1,
    )


async def test_an_unacknowledged_order_updated_is_sent_again_until_acknowledged(
    engine: AsyncEngine, runner: SagaRunner, clock: SetClock
) -> None:
    created = order()
    await deliver(engine, runner, topics.ORDER_CREATED, created)
    unavailable = reserved(created, StockStatus.UNAVAILABLE)
    first = await deliver(engine, runner, topics.PRODUCT_RESERVED, unavailable)
    assert first.topics == [topics.ORDER_UPDATED]

    assert (
        await fire_due_deadlines(
            Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=10)
        )
        == 1
    )
    [(topic, update)] = (await take_outbox(engine)).messages
    assert isinstance(update, OrderUpdated)
    assert (topic, update.status) == (topics.ORDER_UPDATED, OrderStatus.ORDER_CANCELLED)
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.attempts) == ("NOTIFYING", 1)

    ack = applied(created, OrderStatus.ORDER_CANCELLED)
    await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, ack)
    assert (await saga_row(engine, created.orderID)).status == "CANCELLED"
    assert (
        await fire_due_deadlines(Transactions(engine, outbox), runner, now=NOW + timedelta(days=1))
        == 0
    )


async def test_a_second_order_created_for_a_finished_saga_sends_its_order_updated_again(
    engine: AsyncEngine, runner: SagaRunner
) -> None:
    created = order()
    await deliver(engine, runner, topics.ORDER_CREATED, created)
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))
    await deliver(engine, runner, topics.PAYMENT_PROCESSED, paid(created))
    ack = applied(created, OrderStatus.ORDER_COMPLETED)
    await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, ack)
    before = await saga_row(engine, created.orderID)

    again = await deliver(engine, runner, topics.ORDER_CREATED, created)

    [(topic, update)] = again.messages
    assert isinstance(update, OrderUpdated)
    assert (topic, update.status) == (topics.ORDER_UPDATED, OrderStatus.ORDER_COMPLETED)
    assert await saga_row(engine, created.orderID) == before
    assert (await history(engine, created.orderID))[-1][:2] == ("start", "resent")


async def test_a_reply_for_an_unknown_saga_is_ignored(
    engine: AsyncEngine, runner: SagaRunner
) -> None:
    stranger = order()

    sent = await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(stranger))

    assert sent.messages == []
    assert await saga_row(engine, stranger.orderID) is None
    assert await history(engine, stranger.orderID) == []


async def test_stock_silent_past_its_deadline_is_compensated_and_a_late_reply_ignored(
    engine: AsyncEngine, runner: SagaRunner
) -> None:
    created = order()
    first = await deliver(engine, runner, topics.ORDER_CREATED, created)
    saga_trace = first.headers[0][h.TRACEPARENT]

    assert (
        await fire_due_deadlines(
            Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=29)
        )
        == 0
    )
    assert (await take_outbox(engine)).messages == []
    assert (
        await fire_due_deadlines(
            Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=30)
        )
        == 1
    )

    timed_out = await take_outbox(engine)
    [(topic, cancel)] = timed_out.messages
    assert topic == topics.CANCEL_PRODUCT_RESERVATION
    assert isinstance(cancel, CancelProductReservation)
    [sent_headers] = timed_out.headers
    assert sent_headers[h.SAGA_ID] == str(created.orderID)
    assert sent_headers[h.TRACEPARENT] == saga_trace
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.reason) == ("COMPENSATING", "stock did not answer within 30s")
    assert as_utc(row.deadline) == NOW + timedelta(seconds=40)

    late = await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))
    assert late.messages == []
    done = await deliver(engine, runner, topics.PRODUCT_RESERVATION_CANCELLED, released(created))

    [(_, update)] = done.messages
    assert isinstance(update, OrderUpdated)
    assert (update.status, update.reason) == (
        OrderStatus.ORDER_CANCELLED,
        "stock did not answer within 30s",
    )
    assert [e[:2] for e in await history(engine, created.orderID)] == [
        ("start", "started"),
        ("deadline", "timed-out"),
        ("product-reserved", "ignored"),
        ("product-reservation-cancelled", "cancelled"),
    ]


async def test_payment_silent_is_refunded_then_stock_released_resent_until_acknowledged(
    engine: AsyncEngine, runner: SagaRunner, clock: SetClock
) -> None:
    created = order()
    await deliver(engine, runner, topics.ORDER_CREATED, created)
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))  # due at +20 s

    assert (
        await fire_due_deadlines(
            Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=20)
        )
        == 1
    )
    [(_, cancel_payment)] = (await take_outbox(engine)).messages
    assert isinstance(cancel_payment, CancelPayment)
    # No acknowledgement within 10 s: the same compensation again, then wait 20 s.
    assert (
        await fire_due_deadlines(
            Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=30)
        )
        == 1
    )
    assert (await take_outbox(engine)).topics == [topics.CANCEL_PAYMENT]
    row = await saga_row(engine, created.orderID)
    assert (row.attempts, as_utc(row.deadline)) == (1, NOW + timedelta(seconds=50))

    clock.now = NOW + timedelta(seconds=31)
    stock_back = await deliver(engine, runner, topics.PAYMENT_CANCELLED, refunded(created))
    assert stock_back.topics == [topics.CANCEL_PRODUCT_RESERVATION]
    duplicate = await deliver(engine, runner, topics.PAYMENT_CANCELLED, refunded(created))
    assert duplicate.messages == []
    done = await deliver(engine, runner, topics.PRODUCT_RESERVATION_CANCELLED, released(created))

    [(_, update)] = done.messages
    assert isinstance(update, OrderUpdated)
    assert update.reason == "payment did not answer within 20s"
    ack = applied(created, OrderStatus.ORDER_CANCELLED)
    await deliver(engine, runner, topics.ORDER_STATUS_APPLIED, ack)
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.deadline) == ("CANCELLED", None)
    assert (
        await fire_due_deadlines(Transactions(engine, outbox), runner, now=NOW + timedelta(days=1))
        == 0
    )


async def test_saving_a_saga_read_before_another_save_is_refused(
    engine: AsyncEngine, runner: SagaRunner
) -> None:
    created = order()
    await deliver(engine, runner, topics.ORDER_CREATED, created)
    async with engine.connect() as conn:
        stale = await runner.store.load_for_update(conn, str(created.orderID))
    assert stale is not None
    await deliver(engine, runner, topics.PRODUCT_RESERVED, reserved(created))

    with pytest.raises(StaleSaga):
        async with engine.begin() as conn:
            await runner.store.save(conn, stale, NOW)

    row = await saga_row(engine, created.orderID)
    assert (row.step, row.version) == (1, 1)


async def test_the_service_timer_times_out_a_silent_step_on_its_own(engine: AsyncEngine) -> None:
    settings = Settings(reserve_timeout=0.05, timer_interval=0.02)
    service = spec(settings)
    created = order()
    handle = {s.topic: s.handle for s in service.subscriptions}[topics.ORDER_CREATED]
    async with engine.begin() as conn:
        cause = Trace(str(uuid4()), str(created.orderID), new_traceparent())
        await handle(conn, [BatchItem(topics.ORDER_CREATED, created, HandlerContext(conn, cause))])
    woken = asyncio.Event()
    [timer] = service.background
    task = asyncio.ensure_future(timer(Transactions(engine, service.outbox, wake_relay=woken.set)))
    try:
        await asyncio.wait_for(woken.wait(), timeout=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert (await take_outbox(engine)).topics == [topics.CANCEL_PRODUCT_RESERVATION]
    row = await saga_row(engine, created.orderID)
    assert (row.status, row.reason) == ("COMPENSATING", "stock did not answer within 0.05s")
