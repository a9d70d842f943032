"""The consumer loop, outbox relay and inbox, around a tiny counting service, on every
adapter of the broker port (in-process, SQLite-backed in-process, Kafka).

A duplicate is applied once, poison goes to ``<topic>.DLQ`` while the partition moves
on, a fault of the surroundings or a bug is retried (never dead-lettered) until it
passes, a message its handler calls invalid is dead-lettered alone, a crash between the
database's commit and the offsets' is harmless, and a newer schema version waits for a
replica that reads it. The topics are the test's own, read as ``order-updated``
messages: the subscription names the model.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts.messages import OrderUpdated, ProductReservationCancelled
from ordersaga.contracts.statuses import OrderStatus, ReservationCancelStatus
from ordersaga.contracts.topics import dead_letter
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import ConsumerLoop
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import HandlerContext, InvalidMessage, Subscription, one_by_one
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.kafka import KafkaBroker
from ordersaga.messaging.kafka_config import client_options
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import outbox_table
from ordersaga.messaging.port import Broker, OutgoingMessage, Record, TopicPartition
from ordersaga.messaging.unit_of_work import Transactions
from tests.contract.conftest import BrokerUnderTest, KafkaTopics, unique
from tests.fault_kinds import SURROUNDINGS, UNEXPECTED
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


class Flaky:
    """Fails the first ``transient`` calls like an unreachable database, then ``broken``
    calls like a bug, then ``faults`` calls with ``fault``. ``invalid`` orders are
    refused as invalid messages. Before each failure it notes what ``committed`` (the
    group's offsets, where the adapter shows them) says, for the test to look at."""

    def __init__(
        self,
        transient: int = 0,
        broken: int = 0,
        *,
        faults: int = 0,
        fault: Callable[[], Exception] = lambda: ValueError("a bug"),
        invalid: Collection[UUID] = (),
        committed: Callable[[], dict[TopicPartition, int]] | None = None,
    ) -> None:
        self.transient, self.broken = transient, broken
        self.faults, self.fault, self.invalid = faults, fault, set(invalid)
        self.committed = committed
        self.committed_while_failing: list[dict[TopicPartition, int]] = []

    def __call__(self, order_id: UUID) -> None:
        if order_id in self.invalid:
            raise InvalidMessage(f"order {order_id} is not one this service could ever handle")
        if self.committed is not None and (self.transient or self.broken or self.faults):
            self.committed_while_failing.append(self.committed())
        if self.transient:
            self.transient -= 1
            raise OperationalError("SELECT 1", {}, Exception("database is away"))
        if self.broken:
            self.broken -= 1
            raise ValueError("a bug")
        if self.faults:
            self.faults -= 1
            raise self.fault()


class Counter:
    """The tiny service: counts each order it sees and answers on ``replies``."""

    def __init__(self, replies: str, fault: Flaky) -> None:
        self.replies, self.fault = replies, fault

    async def __call__(self, ctx: HandlerContext, message: OrderUpdated) -> None:
        self.fault(message.orderID)
        key = str(message.orderID)
        changed = await ctx.conn.execute(
            update(seen).where(seen.c.order_id == key).values(times=seen.c.times + 1)
        )
        if not changed.rowcount:
            await ctx.conn.execute(insert(seen).values(order_id=key, times=1))
        ctx.send(
            self.replies,
            ProductReservationCancelled(
                orderID=message.orderID,
                productID=1,
                quantity=0,
                status=ReservationCancelStatus.NOTHING_RESERVED,
            ),
        )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "svc.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


@pytest.fixture
async def under_test(broker_under_test: BrokerUnderTest) -> "UnderTest":
    return UnderTest(broker_under_test, await broker_under_test.open())


class UnderTest:
    """One adapter, opened, with what the tests ask of it."""

    def __init__(self, adapter: BrokerUnderTest, broker: Broker) -> None:
        self.adapter, self.broker = adapter, broker
        self.source, self.replies = adapter.topic, adapter.replies
        self.dead_letters = adapter.dead_letters
        self.group = adapter.group("counter")
        self.patience = adapter.patience

    def committed(self) -> Callable[[], dict[TopicPartition, int]] | None:
        """The group's committed offsets, where the adapter can show them without
        joining the group (in process)."""
        broker = self.broker
        if isinstance(broker, InProcessBroker):
            return lambda: dict(broker.committed(self.group))
        return None

    def an_update(self) -> OutgoingMessage:
        return envelope(
            self.source,
            OrderUpdated(
                orderID=uuid4(),
                userID=1,
                productID=1,
                quantity=1,
                amount=Decimal("20"),
                status=OrderStatus.ORDER_COMPLETED,
            ),
        )

    def subscription(self, fault: Flaky) -> Subscription:
        return Subscription(self.source, OrderUpdated, one_by_one(Counter(self.replies, fault)))

    def endpoint(self, engine: AsyncEngine, fault: Flaky, crash_points: object = None) -> Endpoint:
        endpoint = Endpoint(
            name=self.group,
            broker=self.broker,
            engine=engine,
            inbox=inbox,
            outbox=outbox,
            subscriptions=[self.subscription(fault)],
            crash_points=crash_points,  # type: ignore[arg-type]
        )
        endpoint.start()
        return endpoint

    def loop_reading(self, engine: AsyncEngine, version: str, client_id: str) -> ConsumerLoop:
        return ConsumerLoop(
            broker=self.broker,
            group=self.group,
            client_id=client_id,
            transactions=Transactions(engine, outbox, inbox),
            subscriptions=[self.subscription(Flaky())],
            dlq_producer=self.broker.producer(),
            schema_version=version,
        )

    async def read(self, topic: str, want: int) -> list[Record]:
        """``want`` records of ``topic`` (then a moment more, to show there are no others),
        read by a group of their own."""
        consumer = self.broker.consumer(unique("reader"), [topic], "reader")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        records: list[Record] = []
        try:
            while len(records) < want and loop.time() < deadline:
                records += await consumer.poll(100, 0.2)
            records += await consumer.poll(100, 0.5)
        finally:
            await consumer.close()
        return sorted(records, key=lambda r: (r.partition, r.offset))

    async def uncommitted(self) -> list[Record]:
        """What a new member of the counter's group is given once it holds every partition."""
        consumer = self.broker.consumer(self.group, [self.source], f"{self.group}-late")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        records: list[Record] = []
        try:
            while not self.adapter.assigned(consumer):
                assert loop.time() < deadline, "never joined the group"
                records += await consumer.poll(100, 0.2)
            records += await consumer.poll(100, 0.5)
        finally:
            await consumer.close()
        return records


async def times_seen(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.scalars(select(seen.c.times))).all())


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)


def with_value(message: OutgoingMessage, value: bytes, **headers: str) -> OutgoingMessage:
    return OutgoingMessage(message.topic, message.key, value, {**message.headers, **headers})


async def test_a_duplicate_is_applied_once_and_answered_once(
    under_test: UnderTest, engine: AsyncEngine
) -> None:
    message = under_test.an_update()
    await under_test.broker.producer().send_batch([message, message, message])
    endpoint = under_test.endpoint(engine, Flaky())
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 1 and stats.duplicates == 2, under_test.patience)
    await until(lambda: endpoint.relay.published == 1, under_test.patience)  # sent, row deleted
    await endpoint.stop()

    assert await times_seen(engine) == [1]
    assert await outbox_rows(engine) == 0
    (reply,) = await under_test.read(under_test.replies, 1)
    assert reply.key == message.key
    assert reply.headers[h.CAUSATION_ID] == message.headers[h.MESSAGE_ID]
    assert await under_test.uncommitted() == [], "every delivery committed once handled"


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    under_test: UnderTest, engine: AsyncEngine
) -> None:
    good = under_test.an_update()
    bad = OutgoingMessage(under_test.source, good.key, b"{not json", good.headers)
    wrong = OutgoingMessage(under_test.source, good.key, b'{"orderID": "x"}', good.headers)
    await under_test.broker.producer().send_batch([bad, wrong, under_test.an_update()])
    endpoint = under_test.endpoint(engine, Flaky())
    # Partitions are fetched in no particular order: the good record, maybe on a
    # partition of its own, may be handled before or after the two poison ones.
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 1 and stats.dead_lettered == 2, under_test.patience)
    await endpoint.stop()

    dead = await under_test.read(under_test.dead_letters, 2)
    assert [r.value for r in dead] == [b"{not json", b'{"orderID": "x"}']
    assert "not UTF-8 JSON" in dead[0].headers[h.DLQ_ERROR]
    assert "orderID" in dead[1].headers[h.DLQ_ERROR]
    assert {r.headers[h.DLQ_SOURCE_TOPIC] for r in dead} == {under_test.source}
    assert {r.headers[h.DLQ_CONSUMER] for r in dead} == {under_test.group}
    assert [r.headers[h.DLQ_SOURCE_OFFSET] for r in dead] == ["0", "1"]
    assert len({r.headers[h.DLQ_SOURCE_PARTITION] for r in dead}) == 1
    assert all(r.key == good.key for r in dead)
    assert all(r.headers[h.MESSAGE_ID] == good.headers[h.MESSAGE_ID] for r in dead)
    assert await under_test.uncommitted() == []


@pytest.mark.parametrize(
    "fault", [*SURROUNDINGS.values(), *UNEXPECTED.values()], ids=[*SURROUNDINGS, *UNEXPECTED]
)
async def test_every_failure_but_the_messages_own_is_retried_until_it_passes(
    under_test: UnderTest, engine: AsyncEngine, fault: Callable[[], Exception]
) -> None:
    await under_test.broker.producer().send_batch([under_test.an_update()])
    flaky = Flaky(faults=4, fault=fault, committed=under_test.committed())
    endpoint = under_test.endpoint(engine, flaky)
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 1, under_test.patience)
    await endpoint.stop()

    if under_test.committed() is not None:
        assert flaky.committed_while_failing == [{}] * 4, "no offset committed while failing"
    assert await times_seen(engine) == [1]
    assert stats.retries == 4 and stats.failing_since is None
    assert stats.dead_lettered == 0
    assert await under_test.uncommitted() == []


async def test_a_long_failure_is_counted_while_it_lasts_and_logged_without_flooding(
    under_test: UnderTest, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ordersaga.messaging")
    message = under_test.an_update()
    await under_test.broker.producer().send_batch([message])
    pool_timeout = SURROUNDINGS["pool-timeout"]
    endpoint = under_test.endpoint(engine, Flaky(faults=1_000_000, fault=pool_timeout))
    stats = endpoint.consumer.stats
    await until(lambda: stats.retries >= 6, under_test.patience)
    assert stats.failing_since is not None and stats.handled == 0
    await endpoint.stop()

    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert failures[0].levelno == logging.WARNING
    assert "QueuePool limit" in failures[0].getMessage()
    assert stats.dead_lettered == 0
    assert [r.key for r in await under_test.uncommitted()] == [message.key]


async def test_a_bug_is_logged_with_its_traceback_and_retried_until_fixed(
    under_test: UnderTest, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ordersaga.messaging")
    await under_test.broker.producer().send_batch([under_test.an_update()])
    endpoint = under_test.endpoint(engine, Flaky(broken=5))
    await until(lambda: endpoint.consumer.stats.handled == 1, under_test.patience)
    await endpoint.stop()

    assert endpoint.consumer.stats.unexpected == 5
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "a bug" in error.getMessage() and error.exc_info is not None
    assert any("succeeded after 5 failed attempts" in r.getMessage() for r in caplog.records)
    assert endpoint.consumer.stats.dead_lettered == 0


async def test_a_message_its_handler_calls_invalid_is_dead_lettered_alone(
    under_test: UnderTest, engine: AsyncEngine
) -> None:
    good, bad, later = under_test.an_update(), under_test.an_update(), under_test.an_update()
    await under_test.broker.producer().send_batch([good, bad, later])
    fault = Flaky(transient=2, invalid=[UUID(bad.key)])
    endpoint = under_test.endpoint(engine, fault)
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 2 and stats.dead_lettered == 1, under_test.patience)
    await until(lambda: endpoint.relay.published == 2, under_test.patience)
    await endpoint.stop()

    (dead,) = await under_test.read(under_test.dead_letters, 1)
    assert dead.key == bad.key and dead.value == bad.value
    assert dead.headers[h.DLQ_ERROR].startswith("invalid message: order ")
    assert await times_seen(engine) == [1, 1]
    answered = {r.key for r in await under_test.read(under_test.replies, 2)}
    assert answered == {good.key, later.key}
    assert await under_test.uncommitted() == []


async def test_a_transient_fault_retries_the_whole_batch_and_applies_each_message_once(
    under_test: UnderTest, engine: AsyncEngine
) -> None:
    await under_test.broker.producer().send_batch([under_test.an_update() for _ in range(5)])
    endpoint = under_test.endpoint(engine, Flaky(transient=2))
    await until(lambda: endpoint.consumer.stats.handled == 5, under_test.patience)
    await until(lambda: endpoint.relay.published == 5, under_test.patience)
    await endpoint.stop()

    assert await times_seen(engine) == [1] * 5
    assert len(await under_test.read(under_test.replies, 5)) == 5
    assert endpoint.consumer.stats.dead_lettered == 0


class CrashOnce:
    def __init__(self) -> None:
        self.crashed = False

    def after_db_commit(self, record: Record) -> bool:
        crash, self.crashed = not self.crashed, True
        return crash


async def test_a_crash_between_database_and_offset_commit_redelivers_harmlessly(
    under_test: UnderTest, engine: AsyncEngine
) -> None:
    await under_test.broker.producer().send_batch([under_test.an_update()])
    endpoint = under_test.endpoint(engine, Flaky(), crash_points=CrashOnce())
    await until(lambda: endpoint.consumer.stats.duplicates == 1, under_test.patience)
    await until(lambda: endpoint.relay.published == 1, under_test.patience)
    await endpoint.stop()

    assert endpoint.consumer.stats.crashes == 1
    assert await times_seen(engine) == [1]
    assert len(await under_test.read(under_test.replies, 1)) == 1
    assert await under_test.uncommitted() == []


async def test_a_message_with_fields_the_consumer_does_not_know_is_handled(
    under_test: UnderTest, engine: AsyncEngine
) -> None:
    message = under_test.an_update()
    fields = json.loads(message.value)
    added = with_value(message, json.dumps({**fields, "currency": "EUR", "v2": {"x": 1}}).encode())
    await under_test.broker.producer().send_batch([added])
    endpoint = under_test.endpoint(engine, Flaky())
    await until(lambda: endpoint.consumer.stats.handled == 1, under_test.patience)
    await endpoint.stop()

    assert await times_seen(engine) == [1]
    assert endpoint.consumer.stats.dead_lettered == 0


async def test_known_fields_are_still_checked(under_test: UnderTest, engine: AsyncEngine) -> None:
    message = under_test.an_update()
    fields = json.loads(message.value)
    negative = with_value(message, json.dumps({**fields, "amount": -5, "extra": 1}).encode())
    too_big = with_value(message, json.dumps({**fields, "quantity": 2**31}).encode())
    no_version = with_value(message, message.value, **{h.SCHEMA_VERSION: "one"})
    await under_test.broker.producer().send_batch([negative, too_big, no_version])
    endpoint = under_test.endpoint(engine, Flaky())
    await until(lambda: endpoint.consumer.stats.dead_lettered == 3, under_test.patience)
    await endpoint.stop()

    dead = await under_test.read(under_test.dead_letters, 3)
    errors = sorted(r.headers[h.DLQ_ERROR] for r in dead)
    assert "amount" in errors[0] and "quantity" in errors[1]
    assert "schema-version 'one'" in errors[2]
    assert await times_seen(engine) == []


async def run_until(loop: ConsumerLoop, condition: Callable[[], bool], patience: float) -> None:
    running = asyncio.create_task(loop.run())
    try:
        await until(condition, patience)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_newer_schema_version_waits_for_a_replica_that_reads_it(
    under_test: UnderTest, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ordersaga.messaging")
    before = under_test.an_update()
    # One key, so one partition and one order: the newer message holds the later one.
    newer = with_value(before, before.value, **{h.SCHEMA_VERSION: "2", h.MESSAGE_ID: "newer"})
    after = with_value(before, before.value, **{h.MESSAGE_ID: "after"})
    await under_test.broker.producer().send_batch([before, newer, after])

    old = under_test.loop_reading(engine, "1", "counter-old")
    await run_until(old, lambda: old.stats.newer_schema >= 1, under_test.patience)
    assert old.stats.handled == 1 and old.stats.dead_lettered == 0
    said = [r.getMessage() for r in caplog.records if "schema-version 2" in r.getMessage()]
    assert len(said) == 1, said
    assert "reads up to 1" in said[0]
    assert [r.headers[h.MESSAGE_ID] for r in await under_test.uncommitted()] == ["newer", "after"]

    new = under_test.loop_reading(engine, "2", "counter-new")
    await run_until(new, lambda: new.stats.handled == 2, under_test.patience)
    assert await times_seen(engine) == [3], "one order, three messages, each handled once"
    assert old.stats.dead_lettered == new.stats.dead_lettered == 0
    assert await under_test.uncommitted() == []


# Only Kafka carries bytes no adapter of ours would write: a record of another producer.


async def test_bytes_that_are_not_utf8_reach_the_dead_letter_topic_unchanged(
    kafka_settings: Settings, kafka_topics: KafkaTopics, engine: AsyncEngine
) -> None:
    source = unique("order-updated")
    await kafka_topics.create(source, dead_letter(source), f"{source}-replies")
    key, value = b"\xff\xfeorder", b"\x80\x81 not even text"
    headers = [(h.MESSAGE_ID, b"\xc3\x28"), ("binary", bytes(range(256)))]
    await produce_raw(kafka_settings, source, key, value, headers)
    broker = KafkaBroker(kafka_settings)
    try:

        async def opened() -> Broker:
            return broker

        adapter = BrokerUnderTest("kafka", source, opened, 30.0)
        under_test = UnderTest(adapter, broker)
        await broker.producer().send_batch([under_test.an_update()])
        endpoint = under_test.endpoint(engine, Flaky())
        stats = endpoint.consumer.stats
        await until(lambda: stats.handled == 1 and stats.dead_lettered == 1, 60.0)
        await endpoint.stop()
    finally:
        await broker.close()

    (dead,) = await consume_raw(kafka_settings, dead_letter(source))
    assert dead.key == key
    assert dead.value == value
    assert [(k, v) for k, v in dead.headers if not k.startswith("dlq-")] == headers
    assert "not UTF-8 JSON" in dict(dead.headers)[h.DLQ_ERROR].decode()


async def produce_raw(
    settings: Settings, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def consume_raw(settings: Settings, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings),
        group_id=unique("raw-reader"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=60_000, max_records=10)
        return [record for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()
