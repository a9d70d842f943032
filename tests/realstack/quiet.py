"""Waiting for a real stack to be quiet: every saga finished, every outbox empty."""

import asyncio
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.engine import make_engine
from ordersaga.saga.state import SagaStatus

# Every service's outbox is a table called ``outbox``; the orchestrator's serves for all.
from ordersaga.services.orchestrator.tables import outbox, saga_instances
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.tools.bench.data import CHAOS, add_data
from tests.realstack.stack import Stack

FINISHED = (SagaStatus.COMPLETED.value, SagaStatus.CANCELLED.value)


def stack_engines(stack: Stack) -> dict[str, AsyncEngine]:
    return {
        name: make_engine(stack.urls[name]) for name in SERVICE_NAMES
    }


async def add_chaos_data(stack: Stack) -> None:
    """Products and users enough for every order to have a chance (:data:`CHAOS`)."""
    engines = stack_engines(stack)
    try:
        await add_data(engines, CHAOS)
    finally:
        for engine in engines.values():
            await engine.dispose()


async def leftovers(engines: Mapping[str, AsyncEngine]) -> dict[str, int]:
    """What is not done yet: rows in each service's outbox, and unfinished sagas."""
    counts: dict[str, int] = {}
    for name, engine in engines.items():
        async with engine.connect() as conn:
            counts[f"{name} outbox"] = int(
                await conn.scalar(select(func.count()).select_from(outbox)) or 0
            )
            if name == "orchestrator":
                open_sagas = select(func.count()).where(saga_instances.c.status.not_in(FINISHED))
                counts["open sagas"] = int(await conn.scalar(open_sagas) or 0)
    return counts


async def wait_quiet(stack: Stack, timeout: float) -> dict[str, int]:
    """Wait until every saga is finished and every outbox is empty; what is left if
    ``timeout`` runs out first (empty when quiet)."""
    engines = stack_engines(stack)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            left = {what: n for what, n in (await leftovers(engines)).items() if n}
            if not left or loop.time() > deadline:
                return left
            await asyncio.sleep(0.2)
    finally:
        for engine in engines.values():
            await engine.dispose()
