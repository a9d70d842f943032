"""A consumer commits the offsets of what it handled at most once per interval: records
handled one by one share a commit, nothing is committed before its transaction, a clean
stop commits what is held, and a crash commits nothing more (its records come again)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts.messages import OrderUpdated
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import ConsumerLoop
from ordersaga.messaging.handler import BatchItem, Subscription
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.offsets import PendingOffsets
from ordersaga.messaging.port import Record, TopicPartition
from ordersaga.messaging.unit_of_work import Transactions
from tests.contract.test_consumer_loop import inbox, metadata, outbox
from tests.integration.test_endpoint_stop import an_update
from tests.support import until

TOPIC = "order-updated"
TP = TopicPartition(TOPIC, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Committing:
    """The commits a consumer was asked for, in order."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


def at(offset: int) -> Record:
    """A handled record of TOPIC's partition 0 at ``offset``."""
    return Record(TOPIC, 0, offset, "key", b"{}", {})


async def test_offsets_wait_for_the_interval_then_go_in_one_commit() -> None:
    clock, consumer = Clock(), Committing()
    pending = PendingOffsets(0.5, clock)
    assert pending.wait(1.0) == 1.0  # nothing held: a poll may wait its longest

    for offset in (0, 1, 2):
        await pending.handled(consumer, [at(offset)])  # type: ignore[arg-type]
        clock.now += 0.125
    assert consumer.commits == []
    assert pending.wait(1.0) == 0.125  # due 0.5 s after the first was held

    clock.now += 0.125
    await pending.handled(consumer, [])  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 3}]  # the offset after the last handled
    assert not pending and pending.wait(1.0) == 1.0


async def test_an_interval_of_zero_commits_after_every_batch() -> None:
    consumer = Committing()
    pending = PendingOffsets(0.0, Clock())
    await pending.handled(consumer, [at(0), at(1)])  # type: ignore[arg-type]
    await pending.handled(consumer, [at(2)])  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 2}, {TP: 3}]


async def test_records_held_for_a_newer_reader_commit_what_came_before_at_once() -> None:
    consumer = Committing()
    pending = PendingOffsets(60.0, Clock())
    await pending.handled(consumer, [at(4)], at_once=True)  # type: ignore[arg-type]
    assert consumer.commits == [{TP: 5}]


def loop_on(
    broker: InProcessBroker, engine_path: Path, every: float, crash_at: int | None = None
) -> tuple[AsyncEngine, ConsumerLoop]:
    """A consumer loop committing offsets every ``every`` seconds; it dies as a killed
    process would after the transaction of offset ``crash_at``, if given."""
    engine = make_engine(sqlite_url(engine_path))

    async def handle(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
        del conn, items

    class CrashAt:
        def after_db_commit(self, record: Record) -> bool:
            return record.offset == crash_at

    loop = ConsumerLoop(
        broker=broker,
        group="committing",
        client_id="committing-1",
        transactions=Transactions(engine, outbox, inbox),
        subscriptions=[Subscription(TOPIC, OrderUpdated, handle)],
        dlq_producer=broker.producer(),
        crash_points=CrashAt() if crash_at is not None else None,
        linger=0,
        commit_every=every,
    )
    return engine, loop


@asynccontextmanager
async def running(loop: ConsumerLoop, engine: AsyncEngine) -> AsyncIterator["asyncio.Task[None]"]:
    """``loop`` running; stopped cleanly (and its engine disposed) on the way out."""
    task = asyncio.create_task(loop.run())
    try:
        yield task
    finally:
        loop.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


async def test_a_long_interval_holds_the_offsets_until_a_clean_stop(tmp_path: Path) -> None:
    broker = InProcessBroker(partitions=1)
    engine, loop = loop_on(broker, tmp_path / "svc.sqlite3", every=3600)
    await create_schema(engine, metadata)
    async with running(loop, engine):
        for sent in range(1, 4):
            await broker.producer().send_batch([an_update()])
            await until(lambda: loop.stats.handled == sent, timeout=5.0, what="handled")  # noqa: B023
        assert loop.stats.batches == 3  # one at a time, yet none of them committed:
        assert broker.committed("committing") == {}
    assert broker.committed("committing") == {(TOPIC, 0): 3}  # the stop committed them


async def test_a_short_interval_commits_while_running(tmp_path: Path) -> None:
    broker = InProcessBroker(partitions=1)
    engine, loop = loop_on(broker, tmp_path / "svc.sqlite3", every=0.05)
    await create_schema(engine, metadata)
    async with running(loop, engine) as task:
        await broker.producer().send_batch([an_update(), an_update()])
        await until(
            lambda: broker.committed("committing") == {(TOPIC, 0): 2},
            timeout=5.0,
            what="the offsets committed with the loop still running",
        )
        assert not task.done()


async def test_a_crash_commits_nothing_more_and_its_records_come_again(tmp_path: Path) -> None:
    broker = InProcessBroker(partitions=1)
    await broker.producer().send_batch([an_update()])
    engine, crashing = loop_on(broker, tmp_path / "svc.sqlite3", every=3600, crash_at=0)
    await create_schema(engine, metadata)
    task = asyncio.create_task(crashing.run())
    try:
        await until(lambda: crashing.stats.crashes >= 1, timeout=5.0, what="the crash")
        assert broker.committed("committing") == {}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()
    engine, again = loop_on(broker, tmp_path / "svc.sqlite3", every=3600)
    async with running(again, engine):
        await until(lambda: again.stats.duplicates >= 1, timeout=5.0, what="the redelivery")
        assert again.stats.handled == 0  # the inbox knew it: handled once in all
    assert broker.committed("committing") == {(TOPIC, 0): 1}
