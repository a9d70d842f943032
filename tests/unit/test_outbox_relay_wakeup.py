"""The relay publishes on wake-up, not at its next poll, and leaves nothing behind."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import OutboxRelay, write_outbox
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.services.stock.tables import metadata, outbox
from tests.support import until

TOPIC = "product-reserved"
NEVER = 3600.0  # a poll interval no test waits for


def messages(first: int, last: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(TOPIC, f"key-{i % 3}", f"m{i}".encode(), {"message-id": f"id-{i}"})
        for i in range(first, last)
    ]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    # A file, not memory: a private in-memory database shares one connection between
    # the relay's transactions and the test's.
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def write(engine: AsyncEngine, batch: Sequence[OutgoingMessage]) -> None:
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, batch)


def published(broker: InProcessBroker) -> list[bytes]:
    return [r.value for r in broker.records(TOPIC)]


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_each_commit_is_published_on_its_wake_up(engine: AsyncEngine) -> None:
    broker = InProcessBroker(partitions=1)
    relay = OutboxRelay(engine, outbox, broker.producer(), poll_interval=NEVER)
    async with running(relay):
        for first in range(0, 9, 3):
            await write(engine, messages(first, first + 3))
            relay.wake()
            await until(lambda n=first + 3: relay.published == n, timeout=2.0)
    assert published(broker) == [m.value for m in messages(0, 9)]


async def test_a_backlog_larger_than_a_batch_drains_on_one_wake_up(engine: AsyncEngine) -> None:
    broker = InProcessBroker(partitions=1)
    relay = OutboxRelay(engine, outbox, broker.producer(), batch_size=4, poll_interval=NEVER)
    await write(engine, messages(0, 10))
    async with running(relay):
        relay.wake()
        await until(lambda: relay.published == 10, timeout=2.0)
    assert published(broker) == [m.value for m in messages(0, 10)]
    assert relay.published == 10
