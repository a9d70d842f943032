"""Dead-letter topics on Kafka are listed from their offsets: an empty one is not read at
all, a filled one up to the end its offsets gave (so `ordersaga dlq list` answers at once
on a cluster without dead letters)."""

import time
from collections.abc import Sequence
from decimal import Decimal
from uuid import uuid4

from ordersaga.config import Settings
from ordersaga.contracts.messages import OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.contracts.topics import dead_letter
from ordersaga.messaging.dead_letters import ReadLimits, inspect
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.kafka import KafkaBroker, KafkaConsumer
from ordersaga.messaging.port import OutgoingMessage, TopicPartition
from tests.contract.conftest import PARTITIONS, KafkaTopics, unique

# Patience only matters for an empty topic, which is never read here.
LIMITS = ReadLimits(patience=30.0, quiet=1.0)


class CountingBroker(KafkaBroker):
    """Kafka, counting the consumers it hands out: reading a topic takes one."""

    consumers = 0

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> KafkaConsumer:
        self.consumers += 1
        return super().consumer(group, topics, client_id)


def an_update(topic: str) -> OutgoingMessage:
    order = OrderUpdated(
        orderID=uuid4(),
        userID=1,
        productID=1,
        quantity=1,
        amount=Decimal("20.00"),
        status=OrderStatus.ORDER_COMPLETED,
    )
    return envelope(topic, order)


async def a_dlq(kafka_topics: KafkaTopics) -> str:
    name = dead_letter(unique("order-updated"))
    await kafka_topics.create(name)
    return name


async def test_empty_dead_letter_topics_are_listed_from_their_offsets_without_consuming(
    kafka_topics: KafkaTopics, kafka_settings: Settings
) -> None:
    dlq = await a_dlq(kafka_topics)
    broker = CountingBroker(kafka_settings)
    try:
        started = time.monotonic()
        found = await inspect(broker, [dlq], LIMITS)
        print(f"empty listing on Kafka: {time.monotonic() - started:.2f} s")
        assert found.letters == []
        assert broker.consumers == 0
        ranges = await broker.offset_ranges([dlq, unique("missing")])
        assert set(ranges) == {TopicPartition(dlq, p) for p in range(PARTITIONS)}
        assert all(not held for held in ranges.values())
    finally:
        await broker.close()


async def test_a_topic_is_read_up_to_the_end_its_offsets_gave(
    kafka_topics: KafkaTopics, kafka_settings: Settings
) -> None:
    dlq = await a_dlq(kafka_topics)
    broker = CountingBroker(kafka_settings)
    producer = broker.producer()
    try:
        await producer.send_batch([an_update(dlq) for _ in range(3)])
        ranges = await broker.offset_ranges([dlq])
        assert sum(len(held) for held in ranges.values()) == 3
        found = await inspect(broker, [dlq], LIMITS)
        assert len(found.letters) == 3
        assert broker.consumers == 1
    finally:
        await broker.close()
