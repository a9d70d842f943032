"""What the console's tests do on either system: the sagas they place, and the check of
a saga's page against the orchestrator's database."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Entry:
    """One row of a saga's history, as the database holds it."""

    from_state: str
    to_state: str
    message_id: str
    """The message the entry handled ("" for a deadline or an operator's action)."""
    read_at: tuple[str, str, str]
    """The topic, partition and offset it was read at ("" where not recorded)."""
    sent: list[tuple[str, str]]
    """The topic and message id of each message it sent."""


async def stored(engine: AsyncEngine, saga_id: str) -> tuple[str, list[Entry]]:
    """The saga's status and its history, oldest entry first."""
    h = saga_history.c
    status = await state_of(engine, saga_id)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                h.from_status,
                h.to_status,
                h.message_id,
                h.source_topic,
                h.source_partition,
                h.source_offset,
                h.sent,
            )
            .where(h.saga_id == saga_id)
            .order_by(h.seq)
        )
        history = [
            Entry(
                row.from_status or "",
                row.to_status,
                row.message_id or "",
                (_text(row.source_topic), _text(row.source_partition), _text(row.source_offset)),
                [(m["topic"], m["message_id"]) for m in json.loads(row.sent or "[]")],
            )
            for row in rows
        ]
    assert status is not None, f"no saga {saga_id} in the database"
    return status, history


def _text(value: object) -> str:
    return "" if value is None else str(value)


async def check_saga_page(console: Console, engine: AsyncEngine, saga_id: str) -> list[Shown]:
    """Find the saga from the search, open its page; what it shows must be what the
    database holds: its state; a transition per history entry, in order; each message an
    entry handled, where it was read; each message it sent. The saga must be at rest
    (finished or parked)."""
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
    assert transitions == [(entry.from_state, entry.to_state) for entry in history]
    read = {
        (event.message_id, event.topic, event.partition, event.offset)
        for event in shown
        if event.kind == "message_in"
    }
    sent = {
        (event.topic, event.message_id)
        for event in shown
        if event.kind in ("message_out", "compensation_attempt")
    }
    for entry in history:
        if entry.message_id:
            assert (entry.message_id, *entry.read_at) in read, f"not shown: {entry}"
        assert set(entry.sent) <= sent, f"not shown: {entry}"
    assert len(sent) == sum(len(entry.sent) for entry in history)
    return shown


def topics_of(shown: list[Shown], kind: str) -> list[str]:
    return [event.topic for event in shown if event.kind == kind]
