"""The deadline timer on every backend: one saga whose deadline transition fails does not
stop the others timing out, and ends PARKED with its error after a few failures."""

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.clock import ProcessClock
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaStatus
from ordersaga.saga.timer import fire_due_deadlines
from ordersaga.services.orchestrator.operations import SagaOperations
from ordersaga.services.orchestrator.place_order import order_data
from ordersaga.services.orchestrator.tables import outbox, saga_instances
from ordersaga.services.orchestrator.wiring import place_order_runner
from tests.persistence.conftest import Databases
from tests.persistence.support import order_message

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(reserve_timeout=30, payment_timeout=20, compensation_timeout=10)


def runner_at(at: datetime) -> SagaRunner:
    return place_order_runner(SETTINGS, clock=ProcessClock(lambda: at))


async def started(engine: AsyncEngine, at: datetime) -> str:
    """A new saga, started at ``at``: waiting for stock until 30 s later."""
    saga_id = str(uuid4())
    data = order_data(order_message(OrderCreated, order_id=uuid4()))
    async with engine.begin() as conn:
        await runner_at(at).start(conn, saga_id, {**data, "orderID": saga_id})
    return saga_id


async def corrupt(engine: AsyncEngine, saga_id: str) -> None:
    """Give the saga data no compensation can be built from: its amount is no number."""
    async with engine.begin() as conn:
        data = json.loads(
            await conn.scalar(
                select(saga_instances.c.data).where(saga_instances.c.saga_id == saga_id)
            )
        )
        await conn.execute(
            update(saga_instances)
            .where(saga_instances.c.saga_id == saga_id)
            .values(data=json.dumps({**data, "amount": "lots"}))
        )


async def sent_keys(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.topic, outbox.c.message_key))
        return sorted((topic, key) for topic, key in rows.all())


async def test_a_failing_deadline_neither_stops_the_others_nor_runs_for_ever(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    # The bad saga is due first, so every scan meets it before the others.
    bad = await started(engine, NOW - timedelta(seconds=1))
    good = [await started(engine, NOW) for _ in range(3)]
    await corrupt(engine, bad)
    async with engine.begin() as conn:
        await conn.execute(outbox.delete())
    runner = runner_at(NOW)
    operations = SagaOperations(Transactions(engine, outbox), runner)

    # Three scans while the others' compensations are not yet due again (10 s).
    scanned = [
        await fire_due_deadlines(
            Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=s)
        )
        for s in (31, 32, 33)
    ]
    last = await fire_due_deadlines(
        Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=34)
    )

    assert scanned == [4, 1, 1]
    assert last == 0  # parked: no longer scanned
    assert await sent_keys(engine) == sorted(
        (topics.CANCEL_PRODUCT_RESERVATION, saga_id) for saga_id in good
    )
    for saga_id in good:
        assert (await operations.show(saga_id)).saga.status is SagaStatus.COMPENSATING
    detail = await operations.show(bad)
    assert detail.saga.status is SagaStatus.PARKED
    assert detail.saga.deadline is None
    assert detail.saga.reason is not None
    assert detail.saga.reason.startswith("deadline failed 3 times in a row: ValidationError")
    assert "amount" in detail.saga.reason
    assert [(h.entry.event, h.entry.outcome) for h in detail.history] == [
        ("start", "started"),
        ("deadline", "failed"),
        ("deadline", "failed"),
        ("deadline", "parked"),
    ]
    assert all("ValidationError" in (h.entry.note or "") for h in detail.history[1:])
    assert [v.saga_id for v in await operations.find(status=SagaStatus.PARKED)] == [bad]


async def test_a_deadline_that_works_again_after_failing_goes_on_as_usual(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    saga_id = await started(engine, NOW)
    async with engine.connect() as conn:
        data = await conn.scalar(
            select(saga_instances.c.data).where(saga_instances.c.saga_id == saga_id)
        )
    await corrupt(engine, saga_id)
    runner = runner_at(NOW)

    for seconds in (31, 32):
        await fire_due_deadlines(
            Transactions(engine, outbox),
            runner,
            now=NOW + timedelta(seconds=seconds),
            max_failures=3,
        )
    async with engine.begin() as conn:  # an operator mends the data
        await conn.execute(
            update(saga_instances).where(saga_instances.c.saga_id == saga_id).values(data=data)
        )
    await fire_due_deadlines(Transactions(engine, outbox), runner, now=NOW + timedelta(seconds=33))

    detail = await SagaOperations(Transactions(engine, outbox), runner).show(saga_id)
    assert detail.saga.status is SagaStatus.COMPENSATING
    assert [h.entry.outcome for h in detail.history] == [
        "started",
        "failed",
        "failed",
        "timed-out",
    ]
