"""The adapters of the broker port under test: in-process, SQLite-backed and Kafka.

On Kafka, topics and committed offsets outlive a test, so every test gets topics and
group names of its own. Kafka is what `make infra-up` started; when it is not there the
Kafka tests fail, saying so, rather than skip.
"""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ordersaga.config import Settings
from ordersaga.contracts.topics import dead_letter
from ordersaga.messaging.kafka import KafkaBroker, KafkaConsumer
from ordersaga.messaging.kafka_config import client_options
from ordersaga.messaging.memory import InProcessBroker, InProcessConsumer
from ordersaga.messaging.port import Broker, Consumer, TopicPartition

PARTITIONS = 4
ADAPTERS = ["in-process", "in-process-sqlite", "kafka"]


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def require_kafka(settings: Settings) -> None:
    """Fail, saying what to do, unless the first bootstrap server accepts connections."""
    servers = settings.kafka_bootstrap_servers
    host, _, port = servers.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            return
    except OSError as error:
        refused = error
    pytest.fail(
        f"Kafka is not reachable at {servers}: run `make infra-up` ({refused})", pytrace=False
    )


async def delete_topics(settings: Settings, topics: list[str]) -> None:
    """Remove a test's topics from the cluster (best effort: they are uniquely named)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        present = set(await admin.list_topics()) & set(topics)
        if present:
            await admin.delete_topics(sorted(present))
    finally:
        await admin.close()


@pytest.fixture
async def kafka_settings() -> AsyncIterator[Settings]:
    """Settings for the Kafka of `make infra-up`; fails the test when it is not running."""
    settings = Settings()
    require_kafka(settings)
    yield settings


@dataclass
class KafkaTopics:
    """Creates uniquely named topics for one test and deletes them after it."""

    settings: Settings
    created: list[str] = field(default_factory=list)

    async def create(self, *topics: str, partitions: int = PARTITIONS) -> None:
        broker = KafkaBroker(self.settings)
        try:
            await broker.create_topics(list(topics), partitions)
        finally:
            await broker.close()
        self.created.extend(topics)


@pytest.fixture
async def kafka_topics(kafka_settings: Settings) -> AsyncIterator[KafkaTopics]:
    topics = KafkaTopics(kafka_settings)
    yield topics
    await delete_topics(kafka_settings, topics.created)


@dataclass
class BrokerUnderTest:
    """One adapter of the broker port, with a topic of 4 partitions for the test, its
    dead-letter topic and a topic for replies."""

    kind: str
    topic: str
    open: Callable[[], Awaitable[Broker]]
    """Opens the broker; opening it again reaches the same (durable) log and offsets."""
    patience: float
    """Seconds a group may take to form or rebalance, or a record to arrive."""

    @property
    def replies(self) -> str:
        return f"{self.topic}-replies"

    @property
    def dead_letters(self) -> str:
        return dead_letter(self.topic)

    def group(self, name: str) -> str:
        return f"{name}-{self.topic}"

    def assigned(self, consumer: Consumer) -> set[TopicPartition]:
        """The partitions ``consumer`` holds now (as of its last poll, in process)."""
        if isinstance(consumer, KafkaConsumer):
            return consumer.assignment()
        assert isinstance(consumer, InProcessConsumer)
        return set(consumer.assigned)


def _topics_of(topic: str) -> list[str]:
    return [topic, dead_letter(topic), f"{topic}-replies"]


def _opener(
    kind: str, topic: str, path: Path
) -> tuple[Callable[[], Awaitable[Broker]], list[Broker]]:
    opened: list[Broker] = []
    memory = InProcessBroker(partitions=PARTITIONS)

    async def open_broker() -> Broker:
        broker: Broker
        if kind == "in-process":
            broker = memory
        elif kind == "in-process-sqlite":
            broker = InProcessBroker(path, partitions=PARTITIONS)
        else:
            broker = KafkaBroker(Settings())
        await broker.create_topics(_topics_of(topic), PARTITIONS)
        opened.append(broker)
        return broker

    return open_broker, opened


@pytest.fixture(params=ADAPTERS)
async def broker_under_test(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BrokerUnderTest]:
    kind: str = request.param
    settings = Settings()
    if kind == "kafka":
        require_kafka(settings)
    topic = unique("contract")
    open_broker, opened = _opener(kind, topic, tmp_path / "broker.sqlite3")
    patience = 30.0 if kind == "kafka" else 2.0
    yield BrokerUnderTest(kind, topic, open_broker, patience)
    for broker in reversed(opened):
        await broker.close()
    if kind == "kafka":
        await asyncio.wait_for(delete_topics(settings, _topics_of(topic)), 30)
