"""Reading and replaying dead letters, through the functions the ``dlq`` commands use, on
every adapter of the broker port (in-process, SQLite-backed in-process, Kafka).

Poison lands on the dead-letter topic, is found there with its reason, and a replay
after the fix is handled exactly once however often it is replayed; a fault of the
database is never a dead letter. The topics are the test's own, read as
``order-updated`` messages: the subscription names the model. The commands themselves
(their flags, output and mistakes) are tested on the embedded broker file in
tests/integration/test_dlq_commands.py, and reaching Kafka here.
"""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from click.testing import Result
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ordersaga.cli import dlq as dlq_commands
from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts.messages import OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.contracts.topics import dead_letter
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging import dead_letters as dead_letters_module
from ordersaga.messaging.dead_letters import (
    NoSuchRecord,
    ReadLimits,
    find_dead_letter,
    inspect,
    read_topics,
    replay,
)
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import HandlerContext, InvalidMessage, Subscription, one_by_one
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.kafka import KafkaBroker
from ordersaga.messaging.outbox import outbox_table
from ordersaga.messaging.port import Broker, OutgoingMessage
from tests.contract.conftest import BrokerUnderTest, KafkaTopics, unique
from tests.support import until

metadata = MetaData()
seen = Table(
    "seen",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("times", Integer, nullable=False),
)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "svc.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


@dataclass
class Counter:
    """Counts each order it sees; refuses every one as invalid until its rule is fixed,
    and fails like a locked database ``locked`` times first."""

    broken: bool = True
    locked: int = 0

    async def handle(self, ctx: HandlerContext, message: OrderUpdated) -> None:
        if self.locked:
            self.locked -= 1
            error = sqlite3.OperationalError("database is locked")
            raise OperationalError("UPDATE seen", {}, error)
        if self.broken:
            raise InvalidMessage("refused by the handler")
        key = str(message.orderID)
        changed = await ctx.conn.execute(
            update(seen).where(seen.c.order_id == key).values(times=seen.c.times + 1)
        )
        if not changed.rowcount:
            await ctx.conn.execute(insert(seen).values(order_id=key, times=1))


def an_update(topic: str) -> OutgoingMessage:
    return envelope(
        topic,
        OrderUpdated(
            orderID=uuid4(),
            userID=1,
            productID=1,
            quantity=1,
            amount=Decimal("20.00"),
            status=OrderStatus.ORDER_COMPLETED,
        ),
    )


async def times_seen(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.scalars(select(seen.c.times))).all())


def start(
    broker: Broker, engine: AsyncEngine, adapter: BrokerUnderTest, counter: Counter
) -> Endpoint:
    endpoint = Endpoint(
        name=adapter.group("counter"),
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[Subscription(adapter.topic, OrderUpdated, one_by_one(counter.handle))],
    )
    endpoint.start()
    return endpoint


def limits(adapter: BrokerUnderTest) -> ReadLimits:
    # Patience only matters for an empty topic, which the story never reads.
    return ReadLimits(patience=adapter.patience, quiet=1.0 if adapter.kind == "kafka" else 0.3)


async def test_dead_letters_are_found_and_a_replay_after_the_fix_is_handled_once(
    broker_under_test: BrokerUnderTest, engine: AsyncEngine
) -> None:
    adapter = broker_under_test
    source, dlq, group = adapter.topic, adapter.dead_letters, adapter.group("counter")
    broker = await adapter.open()
    counter = Counter()
    update_ = an_update(source)
    poison = OutgoingMessage(source, str(uuid4()), b"{not json", an_update("x").headers)
    await broker.producer().send_batch([update_, poison])
    endpoint = start(broker, engine, adapter, counter)
    stats = endpoint.consumer.stats
    try:
        await until(lambda: stats.dead_lettered == 2, adapter.patience)

        letters = (await inspect(broker, [dlq], limits(adapter))).letters
        by_key = {letter.record.key: letter for letter in letters}
        assert set(by_key) == {update_.key, poison.key}
        failed, bad = by_key[update_.key], by_key[poison.key]
        assert failed.error == "invalid message: refused by the handler"
        assert bad.error.startswith("not UTF-8 JSON")
        assert failed.consumer == group
        assert failed.source_address.startswith(f"{source}/")
        record = failed.record
        at = (record.partition, record.offset)
        assert await find_dead_letter(broker, dlq, *at, limits(adapter)) == failed
        with pytest.raises(NoSuchRecord):
            await find_dead_letter(broker, dlq, record.partition, 999, limits(adapter))

        counter.broken = False
        await replay(broker, [failed])
        await until(lambda: stats.handled == 1, adapter.patience)
        await replay(broker, [failed])  # the same message-id: the inbox skips it
        await until(lambda: stats.duplicates == 1, adapter.patience)
        assert await times_seen(engine) == [1]

        found_all = await inspect(broker, [dlq], limits(adapter), count_replays=True)
        assert len(found_all.letters) == 2, "a replay leaves the dead letter where it is"
        assert found_all.replays_of(failed) == 2
        assert found_all.replays_of(bad) == 0
        assert found_all.replays is not None
        assert set(found_all.replays) == {failed.address}
        async with contextlib.aclosing(read_topics(broker, [source], limits(adapter))) as read:
            replays = [r async for r in read if h.DLQ_REPLAYED_FROM in r.headers]
        assert [r.headers[h.DLQ_REPLAYED_FROM] for r in replays] == [failed.address] * 2
        assert {r.headers[h.MESSAGE_ID] for r in replays} == {update_.headers[h.MESSAGE_ID]}
        assert all((r.key, r.value) == (update_.key, update_.value) for r in replays)
        assert not any(h.DLQ_ERROR in r.headers for r in replays)
    finally:
        await endpoint.stop()
    assert stats.handled == 1


async def test_a_database_fault_is_not_a_dead_letter(
    broker_under_test: BrokerUnderTest, engine: AsyncEngine
) -> None:
    """A handler failing for a while on a locked database is retried, never dead-lettered."""
    adapter = broker_under_test
    broker = await adapter.open()
    await broker.producer().send_batch([an_update(adapter.topic)])
    endpoint = start(broker, engine, adapter, Counter(broken=False, locked=3))
    try:
        await until(lambda: endpoint.consumer.stats.handled == 1, adapter.patience)
    finally:
        await endpoint.stop()
    assert endpoint.consumer.stats.retries == 3
    assert endpoint.consumer.stats.dead_lettered == 0
    assert await times_seen(engine) == [1]


async def dlq(*args: str) -> Result:
    """``ordersaga dlq ARGS``, in a thread: the command runs an event loop of its own."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, dlq_commands.dlq_app, list(args), env={"COLUMNS": "400"}
    )


async def test_the_commands_read_the_dead_letters_of_kafka(
    kafka_settings: Settings,
    kafka_topics: KafkaTopics,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The embedded broker is reached through --data-dir (test_dlq_commands), Kafka
    through the settings."""
    topic = unique("order-updated")
    await kafka_topics.create(topic, dead_letter(topic))
    broker = KafkaBroker(kafka_settings)

    async def opened() -> Broker:
        return broker

    adapter = BrokerUnderTest("kafka", topic, opened, 30.0)
    update_ = an_update(adapter.topic)
    poison = OutgoingMessage(adapter.topic, str(uuid4()), b"{not json", an_update("x").headers)
    await broker.producer().send_batch([update_, poison])
    endpoint = start(broker, engine, adapter, Counter())
    try:
        await until(lambda: endpoint.consumer.stats.dead_lettered == 2, adapter.patience)
        letters = (await inspect(broker, [adapter.dead_letters], limits(adapter))).letters
    finally:
        await endpoint.stop()
        await broker.close()
    (failed,) = [letter for letter in letters if letter.record.key == update_.key]

    # The commands, on the Kafka of the settings, with this test's topic allowed.
    monkeypatch.setattr(dlq_commands, "DLQ_TOPICS", [adapter.dead_letters])
    monkeypatch.setattr(dead_letters_module, "DLQ_TOPICS", [adapter.dead_letters])
    listed = await dlq("list", "--topic", adapter.dead_letters)
    assert listed.exit_code == 0, listed.output
    assert "refused by the handler" in listed.output and "not UTF-8 JSON" in listed.output
    assert f"{adapter.dead_letters}: 2 dead letters" in listed.output
    record = failed.record
    shown = await dlq("show", adapter.dead_letters, str(record.partition), str(record.offset))
    assert shown.exit_code == 0, shown.output
    assert f"message-id: {update_.headers[h.MESSAGE_ID]}" in shown.output
    assert '  "amount": 20.0,' in shown.output
