"""Retention: old inbox rows and long-finished sagas go, in batches; nothing else does."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.retention import inbox_pruner, prune_older, run_retention
from ordersaga.saga.retention import export_finished_sagas, saga_pruner
from ordersaga.services.orchestrator.tables import saga_history, saga_instances
from ordersaga.services.stock.tables import inbox
from tests.persistence.conftest import Databases
from tests.persistence.support import count
from tests.support import until

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def add_inbox_rows(
    engine: AsyncEngine, ages: dict[str, timedelta], now: datetime = NOW
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(inbox),
            [
                {"message_id": m, "topic": "reserve-product", "processed_at": now - age}
                for m, age in ages.items()
            ],
        )


async def remaining_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.scalars(select(inbox.c.message_id))).all())


async def test_inbox_rows_older_than_the_window_are_pruned_in_batches(db: Databases) -> None:
    engine = await db.fresh("stock")
    old = {f"old-{i}": 8 * DAY + timedelta(minutes=i) for i in range(7)}
    await add_inbox_rows(engine, {**old, "recent": DAY, "edge": 7 * DAY - timedelta(seconds=1)})

    pruned = await prune_older(engine, inbox, "processed_at", NOW - 7 * DAY, batch=3)

    assert pruned == 7
    assert await remaining_ids(engine) == {"recent", "edge"}
    assert await inbox_pruner(inbox, 7 * DAY)(engine, NOW) == 0  # nothing left to prune


async def add_saga(
    engine: AsyncEngine,
    saga_id: str,
    status: str,
    finished_ago: timedelta,
    entries: int = 2,
    now: datetime = NOW,
) -> None:
    at = now - finished_ago
    async with engine.begin() as conn:
        await conn.execute(
            insert(saga_instances).values(
                saga_id=saga_id,
                saga_type="place-order",
                status=status,
                step=0,
                data=json.dumps({"orderID": saga_id}),
                deadline=None,
                attempts=0,
                version=1,
                reason=None,
                traceparent="",
                created_at=at - timedelta(seconds=1),
                updated_at=at,
            )
        )
        await conn.execute(
            insert(saga_history),
            [
                {
                    "saga_id": saga_id,
                    "seq": seq,
                    "at": at,
                    "event": "order-created",
                    "outcome": "started",
                    "message_id": None,
                    "from_status": None,
                    "to_status": status,
                    "step": 0,
                    "note": None,
                }
                for seq in range(1, entries + 1)
            ],
        )


async def saga_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.scalars(select(saga_instances.c.saga_id))).all())


async def test_sagas_finished_long_ago_are_exported_then_pruned_with_their_history(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    for i in range(5):
        await add_saga(engine, f"done-{i}", "COMPLETED" if i % 2 else "CANCELLED", 40 * DAY)
    await add_saga(engine, "recent", "COMPLETED", DAY)
    await add_saga(engine, "parked", "PARKED", 40 * DAY)  # never pruned: an operator's
    await add_saga(engine, "running", "RUNNING", 40 * DAY)

    cutoff = NOW - 30 * DAY
    lines = [
        json.loads(line)
        async for line in export_finished_sagas(engine, saga_instances, saga_history, cutoff, 2)
    ]
    assert sorted(line["saga_id"] for line in lines) == [f"done-{i}" for i in range(5)]
    assert all(len(line["history"]) == 2 and line["data"]["orderID"] for line in lines)

    pruned = await saga_pruner(saga_instances, saga_history, 30 * DAY, batch=2)(engine, NOW)

    assert pruned == 5
    assert await saga_ids(engine) == {"recent", "parked", "running"}
    assert await count(engine, saga_history) == 6


async def test_a_service_prunes_in_the_background_and_survives_a_failed_round(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")
    await add_inbox_rows(engine, {"old": 8 * DAY, "new": DAY})
    rounds = 0

    async def failing_once(engine: AsyncEngine, now: datetime) -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise ConnectionError("the database went away")
        return 0

    pruners = [failing_once, inbox_pruner(inbox, 7 * DAY)]
    loop = asyncio.create_task(run_retention(engine, pruners, 0.01, clock=lambda: NOW))
    try:
        await until(lambda: rounds >= 3)  # the second round, whole, is over
        assert await remaining_ids(engine) == {"new"}
    finally:
        loop.cancel()
