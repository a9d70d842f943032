"""What the console's tests do on either system: the sagas they place, and the check of
a saga's page against the orchestrator's database."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.runtime.processes import free_port
from ordersaga.services.orchestrator.tables import saga_history, saga_instances
from tests.console.pages import Console, Shown
from tests.support import until

# (user, product, quantity) on the sample data: prices 1→20, 2→30, 3→50; stock 1→5, 2→5,
# 3→3; balances 1→100, 2→100, 3→200.
COMPLETED = (2, 1, 1)  # 20 of user 2's 100
NO_STOCK = (3, 3, 4)  # 4 of product 3, 3 on hand
NO_MONEY = (1, 2, 4)  # 120, user 1 has 100: reserved, then the payment is rejected
PARKED = (3, 1, 1)  # its payment never answered, and neither its cancellation

UNREADABLE = b"this is not JSON"
"""The value of the record that makes a dead letter."""


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a free port of 127.0.0.1 in this event loop; its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done(), 10, "the admin app serving")
        assert not task.done(), "the admin app did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def state_of(engine: AsyncEngine, saga_id: str) -> str | None:
    """The saga's status; None before the orchestrator started it."""
    async with engine.connect() as conn:
        status = await conn.scalar(
            select(saga_instances.c.status).where(saga_instances.c.saga_id == saga_id)
        )
    return None if status is None else str(status)


async def stored(engine: AsyncEngine, saga_id: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The saga's status, and its history: (from, to, message id) per entry, in order."""
    async with engine.connect() as conn:
        status = await conn.scalar(
            select(saga_instances.c.status).where(saga_instances.c.saga_id == saga_id)
        )
        rows = await conn.execute(
            select(saga_history.c.from_status, saga_history.c.to_status, saga_history.c.message_id)
            .where(saga_history.c.saga_id == saga_id)
            .order_by(saga_history.c.seq)
        )
        history = [(f or "", t, m or "") for f, t, m in rows]
    assert status is not None, f"no saga {saga_id} in the database"
    return str(status), history


async def check_saga_page(console: Console, engine: AsyncEngine, saga_id: str) -> list[Shown]:
    """Find the saga from the search, open its page; what it shows must be what the
    database holds: its state, one transition per history entry, each in order, and the
    message every entry handled. The saga must be at rest (finished or parked)."""
    await console.find(saga_id)
    await console.open_found(saga_id)
    status, history = await stored(engine, saga_id)
    await console.wait_for_state(status)
    shown = await console.timeline()
    transitions = [
        (event.from_state, event.to_state)
        for event in shown
        if event.kind in ("transition", "late_reply_ignored")
    ]
    assert transitions == [(before, after) for before, after, _ in history]
    shown_ids = {event.message_id for event in shown if event.message_id}
    handled = {message_id for _, _, message_id in history if message_id}
    assert handled <= shown_ids, f"messages not shown: {handled - shown_ids}"
    return shown


def topics_of(shown: list[Shown], kind: str) -> list[str]:
    return [event.topic for event in shown if event.kind == kind]
