"""A short batch lingers for what comes right behind it: the consumer loop handles the
records that arrive within its linger in the batch it polled, and a woken relay
publishes the commits that land within its linger in one round."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts.messages import OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import ConsumerLoop
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import BatchItem, Subscription
from ordersaga.messaging.memory import InProcessBroker, InProcessConsumer
from ordersaga.messaging.outbox import OutboxRelay, RelayLimits, write_outbox
from ordersaga.messaging.port import OutgoingMessage, Record
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.stock.tables import inbox, metadata, outbox
from tests.support import until

TOPIC = "order-updated"


def an_update() -> OutgoingMessage:
    return envelope(
        TOPIC,
        OrderUpdated(
            orderID=uuid4(),
            userID=1,
            productID=1,
            quantity=1,
            amount=Decimal("20"),
            status=OrderStatus.ORDER_COMPLETED,
        ),
    )


class SendsBehindTheFirst(InProcessBroker):
    """Its consumers' poll that first brings records sends ``behind`` to the topic
    before it returns: they arrive while the loop lingers, never before its poll."""

    def __init__(self, behind: Sequence[OutgoingMessage]) -> None:
        super().__init__(partitions=1)
        self.behind = list(behind)

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> InProcessConsumer:
        joined = super().consumer(group, topics, client_id)
        sending = _SendingConsumer(self, group, tuple(topics), client_id)
        members = self._groups[group].members
        members[members.index(joined)] = sending
        return sending


class _SendingConsumer(InProcessConsumer):
    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        records = await super().poll(max_records, timeout)
        broker = self._broker
        assert isinstance(broker, SendsBehindTheFirst)
        if records and broker.behind:
            self._broker._append(broker.behind)
            broker.behind = []
        return records


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


async def consume(
    engine: AsyncEngine, broker: InProcessBroker, linger: float, want: int
) -> list[list[str]]:
    """Run a consumer loop with ``linger`` until it handled ``want`` records; the
    message ids of each batch its handler was given."""
    batches: list[list[str]] = []

    async def handle(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
        batches.append([item.context.cause.message_id for item in items])

    loop = ConsumerLoop(
        broker=broker,
        group="lingering",
        client_id="lingering-1",
        transactions=Transactions(engine, outbox, inbox),
        subscriptions=[Subscription(TOPIC, OrderUpdated, handle)],
        dlq_producer=broker.producer(),
        linger=linger,
    )
    task = asyncio.create_task(loop.run())
    try:
        await until(lambda: loop.stats.handled == want, timeout=5.0, what="every record handled")
    finally:
        loop.stop()  # cancels the loop, waiting on its next poll
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert broker.committed("lingering") == {(TOPIC, 0): want}
    return batches


async def test_records_that_arrive_within_the_linger_join_the_polled_batch(
    engine: AsyncEngine,
) -> None:
    first, behind = an_update(), [an_update(), an_update()]
    broker = SendsBehindTheFirst(behind)
    await broker.producer().send_batch([first])

    batches = await consume(engine, broker, linger=0.05, want=3)

    assert batches == [[m.headers["message-id"] for m in [first, *behind]]]


async def test_without_a_linger_a_poll_is_handled_as_it_came(engine: AsyncEngine) -> None:
    first, behind = an_update(), [an_update(), an_update()]
    broker = SendsBehindTheFirst(behind)
    await broker.producer().send_batch([first])

    batches = await consume(engine, broker, linger=0, want=3)

    assert batches == [[first.headers["message-id"]], [m.headers["message-id"] for m in behind]]


class CountingProducer:
    """Publishes to ``broker``; counts its requests (the relay's rounds)."""

    replaced = 0

    def __init__(self, broker: InProcessBroker) -> None:
        self._producer = broker.producer()
        self.requests: list[int] = []

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        self.requests.append(len(messages))
        await self._producer.send_batch(messages)

    async def close(self) -> None:
        await self._producer.close()


async def commit_and_wake(engine: AsyncEngine, relay: OutboxRelay) -> None:
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, [an_update()])
    relay.wake()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(("linger", "requests"), [(0.2, [3]), (0.0, [1, 1, 1])])
async def test_a_woken_relay_publishes_the_commits_within_its_linger_in_one_round(
    engine: AsyncEngine, linger: float, requests: list[int]
) -> None:
    broker = InProcessBroker(partitions=1)
    producer = CountingProducer(broker)
    limits = RelayLimits(linger=linger)
    relay = OutboxRelay(engine, outbox, producer, limits=limits, poll_interval=3600.0)
    async with running(relay):
        await asyncio.sleep(0.05)  # the relay's first round (an empty outbox) is over
        for _ in range(3):
            await commit_and_wake(engine, relay)
            if not linger:
                await until(lambda n=len(producer.requests) + 1: len(producer.requests) == n)
        await until(lambda: relay.published == 3, what="every row published")
    assert producer.requests == requests
    assert len(broker.records(TOPIC)) == 3
