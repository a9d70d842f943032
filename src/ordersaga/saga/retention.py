"""Finished sagas and their history: exported for whoever must keep them, then pruned.

A saga is finished once COMPLETED or CANCELLED; its order, the business record, is kept
by the order service. PARKED and running sagas are never pruned, however old.
"""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.retention import DEFAULT_BATCH, Pruner
from ordersaga.saga.state import SagaStatus

FINISHED = (SagaStatus.COMPLETED.value, SagaStatus.CANCELLED.value)


async def prune_finished_sagas(
    engine: AsyncEngine,
    instances: Table,
    history: Table,
    before: datetime,
    batch: int = DEFAULT_BATCH,
) -> int:
    """Delete the sagas finished before ``before`` with their history, ``batch`` sagas per
    transaction; how many sagas were deleted."""
    pick = (
        select(instances.c.saga_id)
        .where(instances.c.status.in_(FINISHED), instances.c.updated_at < before)
        .order_by(instances.c.updated_at)
        .limit(batch)
    )
    pruned = 0
    while True:
        async with engine.begin() as conn:
            ids = list((await conn.scalars(pick)).all())
            if ids:
                await conn.execute(delete(history).where(history.c.saga_id.in_(ids)))
                await conn.execute(delete(instances).where(instances.c.saga_id.in_(ids)))
        pruned += len(ids)
        if len(ids) < batch:
            return pruned


def saga_pruner(
    instances: Table, history: Table, window: timedelta, batch: int = DEFAULT_BATCH
) -> Pruner:
    """Prune sagas finished more than ``window`` ago."""

    async def prune(engine: AsyncEngine, now: datetime) -> int:
        return await prune_finished_sagas(engine, instances, history, now - window, batch)

    return prune


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def export_finished_sagas(
    engine: AsyncEngine, instances: Table, history: Table, before: datetime, batch: int = 500
) -> AsyncIterator[str]:
    """One JSON line per saga finished before ``before``: its row, its data decoded, and
    its history in order; read in batches by saga id."""
    after = ""
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(instances)
                    .where(
                        instances.c.status.in_(FINISHED),
                        instances.c.updated_at < before,
                        instances.c.saga_id > after,
                    )
                    .order_by(instances.c.saga_id)
                    .limit(batch)
                )
            ).all()
            ids = [row.saga_id for row in rows]
            entries: dict[str, list[dict[str, Any]]] = {saga_id: [] for saga_id in ids}
            if ids:
                found = await conn.execute(
                    select(history)
                    .where(history.c.saga_id.in_(ids))
                    .order_by(history.c.saga_id, history.c.seq)
                )
                for entry in found.mappings():
                    plain = {k: _plain(v) for k, v in entry.items() if k != "saga_id"}
                    entries[entry["saga_id"]].append(plain)
        for row in rows:
            saga = {k: _plain(v) for k, v in row._mapping.items()}
            saga["data"] = json.loads(saga["data"])
            saga["history"] = entries[row.saga_id]
            yield json.dumps(saga, sort_keys=True)
        if len(rows) < batch:
            return
        after = ids[-1]
