"""The payment service's handlers against a real SQLite database, and through its consumer."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import SAMPLE_BALANCES, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    CancelPayment,
    PaymentCancelled,
    PaymentProcessed,
    ProcessPayment,
)
from ordersaga.contracts.statuses import OrderStatus, PaymentCancelStatus, PaymentStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.services.payment.rules import ChargeStatus
from ordersaga.services.payment.tables import balances, metadata, payments
from ordersaga.services.payment.wiring import handle_payment, seed, spec
from tests.support import run_handler, until


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "payment.sqlite3"))
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await seed(conn)
    yield engine
    await engine.dispose()


def pay_command(
    user_id: int = 1, amount: str = "20.00", order_id: UUID | None = None
) -> ProcessPayment:
    return ProcessPayment(
        orderID=order_id or uuid4(),
        userID=user_id,
        productID=1,
        quantity=1,
        amount=Decimal(amount),
        status=OrderStatus.ORDER_CREATED,
    )


def cancel_command(order_id: UUID, user_id: int = 1, amount: str = "20.00") -> CancelPayment:
    return CancelPayment(
        orderID=order_id,
        userID=user_id,
        productID=1,
        quantity=1,
        amount=Decimal(amount),
        status=OrderStatus.ORDER_CANCELLED,
    )


async def pay(engine: AsyncEngine, message: ProcessPayment) -> PaymentProcessed:
    reply = await run_handler(engine, handle_payment, message)
    assert isinstance(reply, PaymentProcessed)
    return reply


async def cancel(engine: AsyncEngine, message: CancelPayment) -> PaymentCancelled:
    reply = await run_handler(engine, handle_payment, message)
    assert isinstance(reply, PaymentCancelled)
    return reply


async def balance_of(engine: AsyncEngine, user_id: int) -> Decimal:
    async with engine.connect() as conn:
        balance = await conn.scalar(select(balances.c.balance).where(balances.c.user_id == user_id))
    assert isinstance(balance, Decimal)
    return balance


async def payment_status(engine: AsyncEngine, order_id: UUID) -> ChargeStatus:
    query = select(payments.c.status).where(payments.c.order_id == str(order_id))
    async with engine.connect() as conn:
        status = (await conn.execute(query)).scalar_one()
    return ChargeStatus(status)


async def test_seed_puts_the_sample_balances_in_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await seed(conn)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(balances))).all()
    assert {r.user_id: (r.balance, r.initial_balance) for r in rows} == {
        user_id: (balance, balance) for user_id, balance in SAMPLE_BALANCES.items()
    }


async def test_a_covered_payment_is_approved_and_charged(engine: AsyncEngine) -> None:
    command = pay_command(user_id=1, amount="20.00")

    reply = await pay(engine, command)

    assert reply.status is PaymentStatus.PAYMENT_APPROVED
    assert (reply.orderID, reply.userID, reply.amount, reply.reason) == (
        command.orderID,
        1,
        Decimal("20.00"),
        None,
    )
    assert await balance_of(engine, 1) == Decimal("80.00")
    assert await payment_status(engine, command.orderID) is ChargeStatus.APPROVED


async def test_a_payment_beyond_the_balance_is_rejected_and_charges_nothing(
    engine: AsyncEngine,
) -> None:
    await pay(engine, pay_command(user_id=1, amount="20.00"))
    command = pay_command(user_id=1, amount="90.00")

    reply = await pay(engine, command)

    assert reply.status is PaymentStatus.PAYMENT_REJECTED
    assert reply.reason == "insufficient funds: balance 80.00, amount 90.00"
    assert await balance_of(engine, 1) == Decimal("80.00")
    assert await payment_status(engine, command.orderID) is ChargeStatus.REJECTED


async def test_a_payment_of_exactly_the_balance_is_approved(engine: AsyncEngine) -> None:
    reply = await pay(engine, pay_command(user_id=3, amount="200.00"))

    assert reply.status is PaymentStatus.PAYMENT_APPROVED
    assert await balance_of(engine, 3) == Decimal("0.00")


async def test_a_payment_for_an_unknown_user_is_rejected(engine: AsyncEngine) -> None:
    command = pay_command(user_id=42)

    reply = await pay(engine, command)

    assert reply.status is PaymentStatus.PAYMENT_REJECTED
    assert reply.reason == "unknown user 42"
    assert await payment_status(engine, command.orderID) is ChargeStatus.REJECTED


async def test_a_payment_sent_again_is_answered_again_without_charging_again(
    engine: AsyncEngine,
) -> None:
    command = pay_command(user_id=2, amount="30.00")

    first = await pay(engine, command)
    second = await pay(engine, command)

    assert first.status is second.status is PaymentStatus.PAYMENT_APPROVED
    assert await balance_of(engine, 2) == Decimal("70.00")


async def test_money_is_exact_to_the_cent(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(balances).values(
                user_id=7, balance=Decimal("0.30"), initial_balance=Decimal("0.30")
            )
        )

    paid = [await pay(engine, pay_command(user_id=7, amount=a)) for a in ("0.10", "0.20")]
    refused = await pay(engine, pay_command(user_id=7, amount="0.01"))

    assert [p.status for p in paid] == [PaymentStatus.PAYMENT_APPROVED] * 2
    assert refused.status is PaymentStatus.PAYMENT_REJECTED
    assert refused.reason == "insufficient funds: balance 0.00, amount 0.01"
    assert await balance_of(engine, 7) == Decimal("0.00")


async def test_a_cancel_refunds_exactly_the_charged_amount_once(engine: AsyncEngine) -> None:
    command = pay_command(user_id=1, amount="20.10")
    await pay(engine, command)

    first = await cancel(engine, cancel_command(command.orderID, user_id=1, amount="99.00"))
    second = await cancel(engine, cancel_command(command.orderID, user_id=1, amount="99.00"))

    assert (first.status, first.amount) == (PaymentCancelStatus.PAYMENT_REFUNDED, Decimal("20.10"))
    assert (second.status, second.amount) == (PaymentCancelStatus.NOTHING_CHARGED, Decimal("0"))
    assert await balance_of(engine, 1) == Decimal("100.00")
    assert await payment_status(engine, command.orderID) is ChargeStatus.REFUNDED


async def test_a_cancel_of_a_rejected_payment_refunds_nothing(engine: AsyncEngine) -> None:
    command = pay_command(user_id=1, amount="150.00")
    await pay(engine, command)

    reply = await cancel(engine, cancel_command(command.orderID, user_id=1, amount="150.00"))

    assert (reply.status, reply.amount) == (PaymentCancelStatus.NOTHING_CHARGED, Decimal("0"))
    assert await balance_of(engine, 1) == Decimal("100.00")


async def test_a_cancel_before_its_payment_leaves_a_tombstone_that_rejects_it(
    engine: AsyncEngine,
) -> None:
    order_id = uuid4()

    voided = await cancel(engine, cancel_command(order_id, user_id=1))
    paid = await pay(engine, pay_command(user_id=1, order_id=order_id))
    again = await cancel(engine, cancel_command(order_id, user_id=1))

    assert (voided.status, voided.amount) == (PaymentCancelStatus.NOTHING_CHARGED, Decimal("0"))
    assert paid.status is PaymentStatus.PAYMENT_REJECTED
    assert paid.reason == "payment was cancelled"
    assert (again.status, again.amount) == (PaymentCancelStatus.NOTHING_CHARGED, Decimal("0"))
    assert await balance_of(engine, 1) == Decimal("100.00")
    assert await payment_status(engine, order_id) is ChargeStatus.VOIDED


async def test_a_cancel_for_an_unknown_user_leaves_a_tombstone_too(engine: AsyncEngine) -> None:
    order_id = uuid4()

    reply = await cancel(engine, cancel_command(order_id, user_id=42))

    assert reply.status is PaymentCancelStatus.NOTHING_CHARGED
    assert await payment_status(engine, order_id) is ChargeStatus.VOIDED


async def test_a_payment_after_its_refund_is_rejected(engine: AsyncEngine) -> None:
    command = pay_command(user_id=1, amount="20.00")
    await pay(engine, command)
    await cancel(engine, cancel_command(command.orderID, user_id=1))

    reply = await pay(engine, command)

    assert reply.status is PaymentStatus.PAYMENT_REJECTED
    assert await balance_of(engine, 1) == Decimal("100.00")


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[list[AsyncEngine]]:
    """Twelve engines on one seeded file: each has its own connection, so transactions
    really contend for the database instead of queueing for one connection."""
    url = sqlite_url(tmp_path / "payment.sqlite3")
    engines = [make_engine(url) for _ in range(12)]
    await create_schema(engines[0], metadata)
    async with engines[0].begin() as conn:
        await seed(conn)
    yield engines
    for engine in engines:
        await engine.dispose()


async def persist(engine: AsyncEngine, command: ProcessPayment) -> PaymentProcessed:
    """Pay until a transaction commits, retrying failures as the consumer does."""
    while True:
        try:
            return await pay(engine, command)
        except (OperationalError, IntegrityError):
            await asyncio.sleep(0.01)


async def test_concurrent_payments_never_overdraw(engines: list[AsyncEngine]) -> None:
    replies = await asyncio.gather(
        *(persist(e, pay_command(user_id=1, amount="30.00")) for e in engines)
    )

    assert [r.status for r in replies].count(PaymentStatus.PAYMENT_APPROVED) == 3
    assert await balance_of(engines[0], 1) == Decimal("10.00")


async def test_concurrent_deliveries_of_one_payment_charge_once(
    engines: list[AsyncEngine],
) -> None:
    command = pay_command(user_id=2, amount="45.50")

    replies = await asyncio.gather(*(persist(e, command) for e in engines))

    assert {r.status for r in replies} == {PaymentStatus.PAYMENT_APPROVED}
    assert await balance_of(engines[0], 2) == Decimal("54.50")


async def test_the_database_refuses_a_negative_balance(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                update(balances).where(balances.c.user_id == 1).values(balance=Decimal("-0.01"))
            )
    assert await balance_of(engine, 1) == Decimal("100.00")


async def test_a_payment_delivered_twice_through_the_consumer_takes_effect_once(
    engine: AsyncEngine,
) -> None:
    service = spec(Settings())
    broker = InProcessBroker()
    endpoint = Endpoint(
        name=service.name,
        broker=broker,
        engine=engine,
        inbox=service.inbox,
        outbox=service.outbox,
        subscriptions=service.subscriptions,
    )
    command = pay_command(user_id=3, amount="50.00")
    record = envelope(topics.PROCESS_PAYMENT, command)
    producer = broker.producer()
    endpoint.start()
    try:
        await producer.send_batch([record])
        await producer.send_batch([record])
        await until(
            lambda: endpoint.consumer.stats.duplicates == 1 and endpoint.relay.published == 1
        )
    finally:
        await endpoint.stop()
        await broker.close()

    [reply] = broker.records(topics.PAYMENT_PROCESSED)
    decoded = decode(reply.topic, reply.value)
    assert isinstance(decoded, PaymentProcessed)
    assert decoded.status is PaymentStatus.PAYMENT_APPROVED
    assert reply.key == str(command.orderID)
    assert await balance_of(engine, 3) == Decimal("150.00")
    assert endpoint.consumer.stats.handled == 1
