"""The relay publishes on wake-up, not at its next poll, and leaves nothing behind; the
commits that land within its linger after a wake-up go in one round."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import OutboxRelay, RelayLimits, write_outbox
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


class CountingProducer:
    """Publishes to ``broker``; counts its requests (the relay's rounds)."""

    replaced = 0

    def __init__(self, broker: InProcessBroker) -> None:
        self._producer = broker.producer()
        self.requests: list[int] = []

    async def send_batch(self, batch: Sequence[OutgoingMessage]) -> None:
        self.requests.append(len(batch))
        await self._producer.send_batch(batch)

    async def close(self) -> None:
        await self._producer.close()


@pytest.mark.parametrize(("linger", "requests"), [(0.2, [3]), (0.0, [1, 1, 1])])
async def test_a_woken_relay_publishes_the_commits_within_its_linger_in_one_round(
    engine: AsyncEngine, linger: float, requests: list[int]
) -> None:
    broker = InProcessBroker(partitions=1)
    producer = CountingProducer(broker)
    relay = OutboxRelay(
        engine, outbox, producer, limits=RelayLimits(linger=linger), poll_interval=NEVER
    )
    async with running(relay):
        await asyncio.sleep(0.05)  # the relay's first round (an empty outbox) is over
        for i in range(3):
            await write(engine, messages(i, i + 1))
            relay.wake()
            if not linger:
                await until(lambda n=i + 1: len(producer.requests) == n)
        await until(lambda: relay.published == 3, what="every row published")
    assert producer.requests == requests
    assert published(broker) == [m.value for m in messages(0, 3)]
