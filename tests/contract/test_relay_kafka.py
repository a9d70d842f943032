"""The relay on a real Kafka: a message the broker refuses for good is parked, not retried."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.header_text import headers_of
from ordersaga.messaging.kafka import KafkaBroker
from ordersaga.messaging.outbox import OutboxRelay, write_outbox
from ordersaga.messaging.outbox_rows import failed_table
from ordersaga.messaging.port import OutgoingMessage, Record
from ordersaga.services.stock.tables import metadata, outbox
from tests.contract.conftest import KafkaTopics, unique

TOO_LARGE = 2 * 1024 * 1024  # over the producer's max_request_size (1 MiB)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def read(broker: KafkaBroker, topic: str, count: int) -> list[Record]:
    consumer = broker.consumer(unique("reader"), [topic], "reader")
    records: list[Record] = []
    async with asyncio.timeout(60):
        while len(records) < count:
            records += await consumer.poll(100, 1.0)
    await consumer.close()
    return records


async def test_a_message_too_large_for_kafka_is_parked_and_the_others_published(
    kafka_settings: Settings, kafka_topics: KafkaTopics, engine: AsyncEngine
) -> None:
    topic = unique("relay")
    await kafka_topics.create(topic, partitions=1)
    broker = KafkaBroker(kafka_settings)
    batch = [
        OutgoingMessage(topic, "a", b"m0", {"message-id": "m0"}),
        OutgoingMessage(topic, "b", b"x" * TOO_LARGE, {"message-id": "huge"}),
        OutgoingMessage(topic, "a", b"m2", {"message-id": "m2"}),
    ]
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, batch)
    relay = OutboxRelay(engine, outbox, broker.producer())
    try:
        assert await relay.publish_once() == 3
        assert await relay.publish_once() == 0
        records = await read(broker, topic, 2)
    finally:
        await broker.close()

    assert [r.value for r in records] == [b"m0", b"m2"]
    assert (relay.published, relay.parked) == (2, 1)
    async with engine.connect() as conn:
        parked = (await conn.execute(select(failed_table(outbox)))).one()
    assert headers_of(parked.headers) == {"message-id": "huge"}
    assert "MessageSizeTooLarge" in parked.error
