"""Retention: rows that have served their purpose, deleted in small batches.

A pruner deletes what is older than its window, a batch at a time, each batch its own
short transaction (no long locks, nothing that blocks the services for long), found
through an index on the column it ages by, so its cost follows the rows it prunes and
not the size of the table. Services run their pruners in the background
(:func:`run_retention`); ``ordersaga prune`` runs them on demand.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.timestamps import utc_now

log = logging.getLogger(__name__)

Pruner = Callable[[AsyncEngine, datetime], Awaitable[int]]
"""Deletes what has been kept long enough at ``now``; returns how many rows it deleted."""

DEFAULT_BATCH = 500


async def prune_older(
    engine: AsyncEngine,
    table: Table,
    aged_by: str,
    before: datetime,
    *,
    where: ColumnElement[bool] | None = None,
    batch: int = DEFAULT_BATCH,
) -> int:
    """Delete ``table``'s rows whose ``aged_by`` column is before ``before`` (and that
    match ``where``), ``batch`` rows per transaction, oldest first; how many were deleted."""
    (key,) = table.primary_key.columns
    age = table.c[aged_by]
    condition = age < before if where is None else (age < before) & where
    pick = select(key).where(condition).order_by(age).limit(batch)
    pruned = 0
    while True:
        async with engine.begin() as conn:
            ids = list((await conn.scalars(pick)).all())
            if ids:
                await conn.execute(delete(table).where(key.in_(ids)))
        pruned += len(ids)
        if len(ids) < batch:
            return pruned


def inbox_pruner(inbox: Table, window: timedelta, batch: int = DEFAULT_BATCH) -> Pruner:
    """Forget the ids of messages handled more than ``window`` ago.

    Safe as long as no message is redelivered after ``window``: a redelivery comes from
    the topic, so the window must be longer than the topics' retention.
    """

    async def prune(engine: AsyncEngine, now: datetime) -> int:
        return await prune_older(engine, inbox, "processed_at", now - window, batch=batch)

    return prune


async def prune_all(engine: AsyncEngine, pruners: Sequence[Pruner], now: datetime) -> int:
    return sum([await prune(engine, now) for prune in pruners])


async def run_retention(
    engine: AsyncEngine,
    pruners: Sequence[Pruner],
    interval: float,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Run ``pruners`` every ``interval`` seconds until cancelled; a failed round (the
    database away) is logged and tried again at the next one."""
    while True:
        try:
            pruned = await prune_all(engine, pruners, clock())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("pruning failed (%r); trying again in %gs", error, interval)
        else:
            if pruned:
                log.info("pruned %d rows past their retention", pruned)
        await asyncio.sleep(interval)
