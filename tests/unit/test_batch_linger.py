"""A short batch lingers for what comes right behind it: the consumer loop handles the
records that arrive within its linger in the batch it polled (the relay's linger is
tested with its wake-ups, in test_outbox_relay_wakeup.py)."""

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts.messages import OrderUpdated
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import ConsumerLoop
from ordersaga.messaging.handler import BatchItem, Subscription
from ordersaga.messaging.memory import InProcessBroker, InProcessConsumer
from ordersaga.messaging.port import OutgoingMessage, Record
from ordersaga.messaging.unit_of_work import Transactions
from tests.contract.test_consumer_loop import inbox, metadata, outbox
from tests.integration.test_endpoint_stop import an_update
from tests.support import until

TOPIC = "order-updated"


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


async def consume(
    where: Path, broker: InProcessBroker, linger: float, want: int
) -> list[list[str]]:
    """Run a consumer loop with ``linger`` on a database under ``where`` until it
    handled ``want`` records; the message ids of each batch its handler was given."""
    engine = make_engine(sqlite_url(where / "svc.sqlite3"))
    await create_schema(engine, metadata)
    try:
        return await _consume(engine, broker, linger, want)
    finally:
        await engine.dispose()


async def _consume(
    engine: AsyncEngine, broker: InProcessBroker, linger: float, want: int
) -> list[list[str]]:
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
    tmp_path: Path,
) -> None:
    first, behind = an_update(), [an_update(), an_update()]
    broker = SendsBehindTheFirst(behind)
    await broker.producer().send_batch([first])

    batches = await consume(tmp_path, broker, linger=0.05, want=3)

    assert batches == [[m.headers["message-id"] for m in [first, *behind]]]


async def test_without_a_linger_a_poll_is_handled_as_it_came(tmp_path: Path) -> None:
    first, behind = an_update(), [an_update(), an_update()]
    broker = SendsBehindTheFirst(behind)
    await broker.producer().send_batch([first])

    batches = await consume(tmp_path, broker, linger=0, want=3)

    assert batches == [[first.headers["message-id"]], [m.headers["message-id"] for m in behind]]
