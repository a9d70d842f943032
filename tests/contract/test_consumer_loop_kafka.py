"""The consumer loop, outbox relay and inbox on Kafka, around a tiny counting service.

The same ideas as the in-process consumer loop tests, on the real broker: a duplicate is
applied once, poison goes to ``<topic>.DLQ`` while the partition moves on, a fault of the
surroundings is retried (never dead-lettered) and a newer schema version waits. The
topics are the test's own (read as ``order-updated``), so nothing else on the cluster
sees them.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts.messages import OrderUpdated, ProductReservationCancelled
from ordersaga.contracts.statuses import OrderStatus, ReservationCancelStatus
from ordersaga.contracts.topics import dead_letter
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import (
    HandlerContext,
    InvalidMessage,
    ItemHandler,
    Subscription,
    one_by_one,
)
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.kafka import KafkaBroker, KafkaConsumer
from ordersaga.messaging.kafka_config import client_options
from ordersaga.messaging.outbox import outbox_table
from ordersaga.messaging.port import OutgoingMessage, Record
from tests.contract.conftest import KafkaTopics, unique
from tests.fault_kinds import SURROUNDINGS
from tests.support import until

PATIENCE = 60.0

metadata = MetaData()
seen = Table(
    "seen",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("times", Integer, nullable=False),
)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


@dataclass(frozen=True)
class Names:
    source: str
    replies: str
    group: str


@pytest.fixture
async def names(kafka_topics: KafkaTopics) -> Names:
    """A source topic read as ``order-updated``, its dead-letter topic and a reply topic."""
    found = Names(unique("order-updated"), unique("replies"), unique("counter"))
    await kafka_topics.create(found.source, dead_letter(found.source), found.replies)
    return found


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "svc.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


@pytest.fixture
async def broker(kafka_settings: Settings) -> AsyncIterator[KafkaBroker]:
    broker = KafkaBroker(kafka_settings)
    yield broker
    await broker.close()


def counter(replies: str) -> ItemHandler:
    """Counts each order it sees and answers on ``replies``."""

    async def handle(ctx: HandlerContext, message: OrderUpdated) -> None:
        key = str(message.orderID)
        changed = await ctx.conn.execute(
            update(seen).where(seen.c.order_id == key).values(times=seen.c.times + 1)
        )
        if not changed.rowcount:
            await ctx.conn.execute(insert(seen).values(order_id=key, times=1))
        ctx.send(
            replies,
            ProductReservationCancelled(
                orderID=message.orderID,
                productID=1,
                quantity=0,
                status=ReservationCancelStatus.NOTHING_RESERVED,
            ),
        )

    return handle


def run_endpoint(broker: KafkaBroker, engine: AsyncEngine, names: Names) -> Endpoint:
    endpoint = Endpoint(
        name=names.group,
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[
            Subscription(names.source, OrderUpdated, one_by_one(counter(names.replies)))
        ],
    )
    endpoint.start()
    return endpoint


def an_update(topic: str) -> OutgoingMessage:
    return envelope(
        topic,
        OrderUpdated(
            orderID=uuid4(),
            userID=1,
            productID=1,
            quantity=1,
            amount=Decimal("20"),
            status=OrderStatus.ORDER_COMPLETED,
        ),
    )


async def read_all(broker: KafkaBroker, topic: str, want: int, group: str) -> list[Record]:
    """``want`` records of ``topic``, then a second more to show there are no others."""
    consumer = broker.consumer(group, [topic], f"{group}-reader")
    records: list[Record] = []
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while len(records) < want and asyncio.get_running_loop().time() < deadline:
        records += await consumer.poll(100, 0.2)
    records += await consumer.poll(100, 1.0)
    await consumer.close()
    return records


async def uncommitted(broker: KafkaBroker, topic: str, group: str) -> list[Record]:
    """What a new member of ``group`` is given, once it holds every partition of ``topic``."""
    consumer = broker.consumer(group, [topic], f"{group}-late")
    assert isinstance(consumer, KafkaConsumer)
    records: list[Record] = []
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not consumer.assignment():
        assert asyncio.get_running_loop().time() < deadline, "never joined the group"
        records += await consumer.poll(100, 0.2)
    records += await consumer.poll(100, 1.0)
    await consumer.close()
    return records


async def count_rows(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_message_sent_twice_is_applied_once_and_answered_once(
    broker: KafkaBroker, engine: AsyncEngine, names: Names
) -> None:
    message = an_update(names.source)
    await broker.producer().send_batch([message, message])
    endpoint = run_endpoint(broker, engine, names)
    await until(lambda: endpoint.consumer.stats.duplicates == 1, PATIENCE)
    replies = await read_all(broker, names.replies, 1, unique("replies-reader"))
    await until(lambda: endpoint.relay.published == 1, PATIENCE)
    await endpoint.stop()

    assert endpoint.consumer.stats.handled == 1
    async with engine.connect() as conn:
        assert list((await conn.scalars(select(seen.c.times))).all()) == [1]
    assert await count_rows(engine, outbox) == 0
    assert len(replies) == 1
    assert replies[0].key == message.key
    assert replies[0].headers[h.CAUSATION_ID] == message.headers[h.MESSAGE_ID]
    # Both deliveries were committed once handled: the group has nothing left to read.
    assert await uncommitted(broker, names.source, names.group) == []


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    broker: KafkaBroker, engine: AsyncEngine, names: Names
) -> None:
    good = an_update(names.source)
    bad = OutgoingMessage(names.source, good.key, b"{not json", good.headers)
    wrong = OutgoingMessage(names.source, good.key, b'{"orderID": "x"}', good.headers)
    await broker.producer().send_batch([bad, wrong, an_update(names.source)])
    endpoint = run_endpoint(broker, engine, names)
    # Partitions are fetched in no particular order: the good record, on a partition of
    # its own, may be handled before or after the two poison ones.
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 1 and stats.dead_lettered == 2, PATIENCE)
    await endpoint.stop()

    dead = await read_all(broker, dead_letter(names.source), 2, unique("dlq-reader"))
    assert [r.value for r in dead] == [b"{not json", b'{"orderID": "x"}']
    assert "not UTF-8 JSON" in dead[0].headers[h.DLQ_ERROR]
    assert "orderID" in dead[1].headers[h.DLQ_ERROR]
    assert {r.headers[h.DLQ_SOURCE_TOPIC] for r in dead} == {names.source}
    assert {r.headers[h.DLQ_CONSUMER] for r in dead} == {names.group}
    assert [r.headers[h.DLQ_SOURCE_OFFSET] for r in dead] == ["0", "1"]
    assert len({r.headers[h.DLQ_SOURCE_PARTITION] for r in dead}) == 1
    assert all(r.key == good.key for r in dead)
    assert all(r.headers[h.MESSAGE_ID] == good.headers[h.MESSAGE_ID] for r in dead)
    assert await uncommitted(broker, names.source, names.group) == []


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
        batches = await consumer.getmany(timeout_ms=int(PATIENCE * 1000), max_records=10)
        return [record for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()


async def test_bytes_that_are_not_utf8_reach_the_dead_letter_topic_unchanged(
    kafka_settings: Settings, broker: KafkaBroker, engine: AsyncEngine, names: Names
) -> None:
    key, value = b"\xff\xfeorder", b"\x80\x81 not even text"
    headers = [(h.MESSAGE_ID, b"\xc3\x28"), ("binary", bytes(range(256)))]
    await produce_raw(kafka_settings, names.source, key, value, headers)
    await broker.producer().send_batch([an_update(names.source)])
    endpoint = run_endpoint(broker, engine, names)
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 1 and stats.dead_lettered == 1, PATIENCE)
    await endpoint.stop()

    (dead,) = await consume_raw(kafka_settings, dead_letter(names.source))
    assert dead.key == key
    assert dead.value == value
    assert [(k, v) for k, v in dead.headers if not k.startswith("dlq-")] == headers
    assert "not UTF-8 JSON" in dict(dead.headers)[h.DLQ_ERROR].decode()


class Failing:
    """Wraps a handler: the first ``times`` calls fail with ``fault``; ``invalid`` orders are
    refused as invalid messages."""

    def __init__(
        self, handle: ItemHandler, fault: Exception, times: int, invalid: str = ""
    ) -> None:
        self.handle, self.fault, self.times, self.invalid = handle, fault, times, invalid

    async def __call__(self, ctx: HandlerContext, message: OrderUpdated) -> None:
        if str(message.orderID) == self.invalid:
            raise InvalidMessage("refused as invalid")
        if self.times:
            self.times -= 1
            raise self.fault
        await self.handle(ctx, message)


@pytest.mark.parametrize(
    "fault",
    ["pool-timeout", "pg-55P03", "mysql-1205"],
)
async def test_a_fault_is_retried_and_only_an_invalid_message_is_dead_lettered(
    broker: KafkaBroker, engine: AsyncEngine, names: Names, fault: str
) -> None:
    good, bad = an_update(names.source), an_update(names.source)
    await broker.producer().send_batch([good, bad])
    failing = Failing(counter(names.replies), SURROUNDINGS[fault](), 5, invalid=bad.key)
    endpoint = Endpoint(
        name=names.group,
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[Subscription(names.source, OrderUpdated, one_by_one(failing))],
    )
    endpoint.start()
    stats = endpoint.consumer.stats
    await until(lambda: stats.handled == 1 and stats.dead_lettered == 1, PATIENCE)
    await endpoint.stop()

    assert stats.retries >= 5
    (dead,) = await read_all(broker, dead_letter(names.source), 1, unique("dlq-reader"))
    assert (
        dead.key == bad.key and dead.headers[h.DLQ_ERROR] == "invalid message: refused as invalid"
    )
    async with engine.connect() as conn:
        assert list((await conn.scalars(select(seen.c.order_id))).all()) == [good.key]
    assert await uncommitted(broker, names.source, names.group) == []


async def test_a_newer_schema_version_is_not_dead_lettered_nor_committed(
    broker: KafkaBroker, engine: AsyncEngine, names: Names
) -> None:
    newer = an_update(names.source)
    newer = OutgoingMessage(
        newer.topic, newer.key, newer.value, {**newer.headers, h.SCHEMA_VERSION: "2"}
    )
    await broker.producer().send_batch([newer])
    endpoint = run_endpoint(broker, engine, names)
    await until(lambda: endpoint.consumer.stats.newer_schema >= 1, PATIENCE)
    await endpoint.stop()

    assert endpoint.consumer.stats.dead_lettered == 0 and endpoint.consumer.stats.handled == 0
    (waiting,) = await uncommitted(broker, names.source, names.group)
    assert waiting.key == newer.key
