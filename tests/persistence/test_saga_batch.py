"""The orchestrator's batch path on every backend: a polled batch handled in one
transaction has the effect of its records handled one by one."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    OrderCreated,
    PaymentProcessed,
    ProductReserved,
    WireMessage,
)
from ordersaga.contracts.statuses import PaymentStatus, StockStatus
from ordersaga.messaging.batch import BatchOutcome, handle_batch
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import Decoded
from ordersaga.messaging.port import Record
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.clock import ProcessClock
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaState, SagaStatus
from ordersaga.saga.store import LockedSaga, SagaStore, StaleSaga
from ordersaga.services.orchestrator.handlers import subscriptions
from ordersaga.services.orchestrator.tables import inbox, outbox, saga_history, saga_instances
from ordersaga.services.orchestrator.wiring import place_order_runner
from tests.persistence.conftest import Databases
from tests.persistence.lock_waits import session_id, until_waiting_for_a_lock
from tests.persistence.support import count, order_message

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(reserve_timeout=30, payment_timeout=20, compensation_timeout=10)
RUNNER = place_order_runner(SETTINGS, clock=ProcessClock(lambda: NOW))

# Where the driver counts the rows an UPDATE run for several parameter sets matched
# (``supports_sane_multi_rowcount``): not asyncpg, which reports none.
ROW_COUNTING = ["sqlite", "mariadb"]
# Where a transaction waits for another's row lock: not SQLite, whose one connection per
# engine runs the embedded orchestrator's transactions one after the other.
ROW_LOCKING = ["postgresql", "mariadb"]


def created(order_id: UUID) -> OrderCreated:
    return order_message(OrderCreated, order_id=order_id, amount=Decimal("20.00"))


def reserved(order_id: UUID, status: StockStatus = StockStatus.AVAILABLE) -> ProductReserved:
    return ProductReserved(orderID=order_id, userID=1, productID=1, quantity=1, status=status)


def paid(order_id: UUID) -> PaymentProcessed:
    return PaymentProcessed(
        orderID=order_id, userID=1, amount=Decimal("20.00"), status=PaymentStatus.PAYMENT_APPROVED
    )


def record(topic: str, message: WireMessage, offset: int, message_id: str | None = None) -> Decoded:
    """``message`` as read from ``topic``, with a message id of its own unless given one."""
    out = envelope(topic, message)
    headers = dict(out.headers)
    if message_id is not None:
        headers["message-id"] = message_id
    read = Record(topic, 0, offset, out.key, out.value, headers)
    return Decoded(read, decode(topic, read.value), headers["message-id"])


def numbered(*messages: tuple[str, WireMessage]) -> list[Decoded]:
    return [record(topic, message, offset) for offset, (topic, message) in enumerate(messages)]


async def in_one_batch(
    engine: AsyncEngine, items: Sequence[Decoded], runner: SagaRunner = RUNNER
) -> BatchOutcome:
    handlers = {s.topic: s.handle for s in subscriptions(runner)}
    return await handle_batch(Transactions(engine, outbox, inbox), items, handlers)


async def one_by_one(engine: AsyncEngine, items: Sequence[Decoded]) -> list[str]:
    handlers = {s.topic: s.handle for s in subscriptions(RUNNER)}
    sent: list[str] = []
    for item in items:
        outcome = await handle_batch(Transactions(engine, outbox, inbox), [item], handlers)
        sent += [m.topic for m in outcome.sent]
    return sent


async def stored(engine: AsyncEngine, saga_id: UUID) -> tuple[SagaState | None, list[Any]]:
    """The saga as stored, and its history as (seq, event, outcome, message id) rows."""
    async with engine.begin() as conn:
        state = await RUNNER.store.load_for_update(conn, str(saga_id))
        query = (
            select(
                saga_history.c.seq,
                saga_history.c.event,
                saga_history.c.outcome,
                saga_history.c.message_id,
            )
            .where(saga_history.c.saga_id == str(saga_id))
            .order_by(saga_history.c.seq)
        )
        history = [tuple(row) for row in (await conn.execute(query)).all()]
    return state, history


async def test_messages_of_one_saga_in_one_batch_see_each_other(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    order = uuid4()
    items = numbered(
        (topics.ORDER_CREATED, created(order)),
        (topics.PRODUCT_RESERVED, reserved(order)),
        (topics.PAYMENT_PROCESSED, paid(order)),
    )

    outcome = await in_one_batch(engine, items)

    state, history = await stored(engine, order)
    # Completed, and waiting for the order service to acknowledge its order-updated.
    assert state is not None and state.status is SagaStatus.NOTIFYING
    assert state.version == 2  # as two saves after the insert would leave it
    assert [m.topic for m in outcome.sent] == [
        topics.RESERVE_PRODUCT,
        topics.PROCESS_PAYMENT,
        topics.ORDER_UPDATED,
    ]
    assert [(seq, outcome) for seq, _, outcome, _ in history] == [
        (1, "started"),
        (2, "advanced"),
        (3, "completed"),
    ]
    assert [message_id for *_, message_id in history] == [i.message_id for i in items]


async def test_a_batch_leaves_what_one_by_one_leaves(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    done, refused, unknown = uuid4(), uuid4(), uuid4()
    # Saga ``done`` exists before the batch; ``refused`` starts in it and is refused
    # stock; a late reply comes for ``done`` and a reply for a saga never started.
    setup = numbered((topics.ORDER_CREATED, created(done)))
    await one_by_one(engine, setup)
    items = numbered(
        (topics.ORDER_CREATED, created(refused)),
        (topics.PRODUCT_RESERVED, reserved(done)),
        (topics.ORDER_CREATED, created(done)),
        (topics.PRODUCT_RESERVED, reserved(refused, StockStatus.UNAVAILABLE)),
        (topics.PAYMENT_PROCESSED, paid(unknown)),
        (topics.PAYMENT_PROCESSED, paid(done)),
        (topics.PRODUCT_RESERVED, reserved(done)),
    )
    batched = await in_one_batch(engine, items)
    after_batch = [await stored(engine, saga) for saga in (done, refused, unknown)]

    engine = await db.fresh("orchestrator")
    await one_by_one(engine, setup)
    sent = await one_by_one(engine, items)
    after_one_by_one = [await stored(engine, saga) for saga in (done, refused, unknown)]

    assert [m.topic for m in batched.sent] == sent
    assert after_batch == after_one_by_one
    state, history = after_batch[0]
    assert state is not None and state.status is SagaStatus.NOTIFYING
    assert [outcome for _, _, outcome, _ in history] == [
        "started",
        "advanced",
        "ignored",
        "completed",
        "ignored",
    ]
    assert after_batch[2] == (None, [])


async def test_a_duplicate_in_a_batch_is_applied_once(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    order = uuid4()
    first = record(topics.ORDER_CREATED, created(order), 0)
    reply = record(topics.PRODUCT_RESERVED, reserved(order), 1)
    again = record(topics.PRODUCT_RESERVED, reserved(order), 2, message_id=reply.message_id)

    outcome = await in_one_batch(engine, [first, reply, again])
    redelivered = await in_one_batch(engine, [reply])

    state, history = await stored(engine, order)
    assert (outcome.handled, outcome.duplicates) == (2, 1)
    assert (redelivered.handled, redelivered.duplicates, redelivered.sent) == (0, 1, [])
    assert state is not None and state.status is SagaStatus.RUNNING and state.step == 1
    assert [outcome for _, _, outcome, _ in history] == ["started", "advanced"]
    assert await count(engine, outbox) == 2


@dataclass(frozen=True)
class ReadsAnOldVersion(SagaStore):
    """A store that hands out each saga as it was one save ago, as a stale read would."""

    async def load_many_locked(
        self, conn: AsyncConnection, saga_ids: Sequence[str]
    ) -> dict[str, LockedSaga]:
        found = await super().load_many_locked(conn, saga_ids)
        return {
            saga_id: replace(locked, state=replace(locked.state, version=locked.state.version - 1))
            for saga_id, locked in found.items()
        }


async def test_a_stale_saga_fails_the_whole_batch(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    order, other = uuid4(), uuid4()
    await one_by_one(engine, numbered((topics.ORDER_CREATED, created(order))))
    await one_by_one(engine, numbered((topics.PRODUCT_RESERVED, reserved(order))))
    stale = ReadsAnOldVersion(saga_instances, saga_history, RUNNER.definition.name)
    runner = replace(RUNNER, store=stale)
    items = numbered(
        (topics.ORDER_CREATED, created(other)), (topics.PAYMENT_PROCESSED, paid(order))
    )

    with pytest.raises(StaleSaga):
        await in_one_batch(engine, items, runner)

    state, history = await stored(engine, order)
    assert state is not None and state.status is SagaStatus.RUNNING and state.version == 1
    assert len(history) == 2
    assert await stored(engine, other) == (None, [])
    assert (await count(engine, inbox), await count(engine, outbox)) == (2, 2)


@pytest.mark.parametrize("backend", ROW_COUNTING)
async def test_a_stale_row_among_several_fails_the_save(db: Databases) -> None:
    """Where the driver counts the rows of a statement run for several parameter sets.

    Where it cannot (asyncpg), the row locks of the batch's read keep other saves out:
    see the next test.
    """
    engine = await db.fresh("orchestrator")
    first, second = uuid4(), uuid4()
    await one_by_one(
        engine,
        numbered((topics.ORDER_CREATED, created(first)), (topics.ORDER_CREATED, created(second))),
    )
    async with engine.begin() as conn:
        dialect_counts = conn.dialect.supports_sane_multi_rowcount
        locked = await RUNNER.store.load_many_locked(conn, [str(first), str(second)])
        await RUNNER.store.save(conn, locked[str(second)].state, NOW)  # saved meanwhile
    saves = [(replace(locked[s].state, version=1, step=1), 0) for s in sorted(locked)]

    assert dialect_counts, f"{db.backend}'s driver no longer counts executemany's rows"
    with pytest.raises(StaleSaga):
        async with engine.begin() as conn:
            await RUNNER.store.save_many(conn, saves, NOW)
    state, _ = await stored(engine, first)
    assert state is not None and state.step == 0


@pytest.mark.parametrize("backend", ROW_LOCKING)
async def test_a_save_waits_for_the_batch_holding_the_saga(db: Databases) -> None:
    """Where rows are locked, the batch's read keeps every other save out until it commits,
    which is what the version check of a batch rests on where rows cannot be counted."""
    batch_engine, other_engine = db.engines("orchestrator", 2)
    await db.fresh("orchestrator")
    order = uuid4()
    await one_by_one(batch_engine, numbered((topics.ORDER_CREATED, created(order))))
    read = asyncio.Event()
    session: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def competing_save() -> None:
        await read.wait()
        async with other_engine.begin() as conn:
            session.set_result(await session_id(conn))
            state = await RUNNER.store.get(conn, str(order))
            assert state is not None
            await RUNNER.store.save(conn, replace(state.state, step=1), NOW)

    async def batch() -> None:
        async with batch_engine.begin() as conn:
            locked = await RUNNER.store.load_many_locked(conn, [str(order)])
            read.set()
            # The competing save runs meanwhile, and must wait for this transaction.
            await until_waiting_for_a_lock(
                db.engine("orchestrator"), await session, statement="UPDATE saga_instances"
            )
            state = locked[str(order)].state
            await RUNNER.store.save_many(conn, [(replace(state, version=1), 0)], NOW)

    results = await asyncio.gather(batch(), competing_save(), return_exceptions=True)

    assert results[0] is None
    assert isinstance(results[1], StaleSaga)
    state, _ = await stored(batch_engine, order)
    assert state is not None and state.version == 1 and state.step == 0
