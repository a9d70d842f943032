"""The Kafka producer adapter's failures, on a fake aiokafka client: which errors park a
message, which replace the producer, and that a cancelled send waits for nothing."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import (  # type: ignore[import-untyped]
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    OutOfOrderSequenceNumber,
    TopicAuthorizationFailedError,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.kafka import KafkaProducer
from ordersaga.messaging.outbox import OutboxRelay, PublishTimeout, RelayLimits, write_outbox
from ordersaga.messaging.port import OutgoingMessage, UndeliverableMessages
from ordersaga.services.stock.tables import metadata, outbox
from tests.support import until

TOPIC = "product-reserved"

# What one send of one client does: None delivers; an error fails the delivery, or,
# wrapped in a tuple, is raised by send() itself (the client refusing before sending).
Outcome = BaseException | tuple[BaseException] | None
Behaviour = Callable[[int, int, str, bytes], Outcome]  # (client, send number, topic, value)


class FakeClient:
    def __init__(self, cluster: "FakeCluster", number: int) -> None:
        self._cluster = cluster
        self.number = number
        self.sends = 0
        self.stopped = False
        self.pending: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        outcome = self._cluster.behaviour(self.number, self.sends, topic, value)
        self.sends += 1
        if isinstance(outcome, tuple):
            raise outcome[0]
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if outcome is None:
            self._cluster.delivered.append((self.number, value.decode()))
            delivery.set_result(None)
        elif outcome is not HANG:
            delivery.set_exception(outcome)
        self.pending.append(delivery)
        return delivery


HANG = ConnectionError("never answered")


class FakeCluster:
    """Makes fake aiokafka producers; remembers them and what they delivered."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.clients: list[FakeClient] = []
        self.delivered: list[tuple[int, str]] = []

    def make(self, **options: Any) -> FakeClient:
        assert options["enable_idempotence"] is True
        client = FakeClient(self, len(self.clients))
        self.clients.append(client)
        return client


def producer(cluster: FakeCluster) -> KafkaProducer:
    return KafkaProducer({}, factory=cluster.make, backoff=Backoff(first=0.01, cap=0.02))


def messages(*values: str, topic: str = TOPIC) -> list[OutgoingMessage]:
    return [OutgoingMessage(topic, f"key-{v[-1]}", v.encode(), {"message-id": v}) for v in values]


async def test_messages_refused_for_good_are_reported_and_the_rest_delivered() -> None:
    def behaviour(client: int, send: int, topic: str, value: bytes) -> Outcome:
        if topic == "forbidden":
            return TopicAuthorizationFailedError()
        if value == b"huge":
            return (MessageSizeTooLargeError("too large"),)
        return None

    cluster = FakeCluster(behaviour)
    batch = [
        *messages("m0"),
        *messages("m1", topic="forbidden"),
        *messages("m2", "huge", "m4"),
    ]

    with pytest.raises(UndeliverableMessages) as raised:
        await producer(cluster).send_batch(batch)

    assert sorted(raised.value.failures) == [1, 3]
    assert "TopicAuthorizationFailedError" in raised.value.failures[1]
    assert "MessageSizeTooLargeError" in raised.value.failures[3]
    assert "too large" in raised.value.failures[3]
    assert cluster.delivered == [(0, "m0"), (0, "m2"), (0, "m4")]


async def test_a_transient_failure_fails_the_whole_batch_for_a_retry() -> None:
    def behaviour(client: int, send: int, topic: str, value: bytes) -> Outcome:
        if topic == "forbidden":
            return TopicAuthorizationFailedError()
        return NotEnoughReplicasError() if value == b"m2" else None

    cluster = FakeCluster(behaviour)
    kafka = producer(cluster)

    with pytest.raises(NotEnoughReplicasError):
        await kafka.send_batch(
            [*messages("m0"), *messages("m1", topic="forbidden"), *messages("m2")]
        )

    assert kafka.replaced == 0 and len(cluster.clients) == 1


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def relayed(relay: OutboxRelay, condition: Callable[[], bool]) -> None:
    task = asyncio.create_task(relay.run())
    try:
        await until(condition)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def write(engine: AsyncEngine, batch: Sequence[OutgoingMessage]) -> None:
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, batch)


async def test_a_producer_broken_mid_batch_is_replaced_and_every_row_published(
    engine: AsyncEngine,
) -> None:
    def behaviour(client: int, send: int, topic: str, value: bytes) -> Outcome:
        # The first client's sender dies at its third record, failing all that follow.
        return OutOfOrderSequenceNumber() if client == 0 and send >= 2 else None

    cluster = FakeCluster(behaviour)
    kafka = producer(cluster)
    relay = OutboxRelay(engine, outbox, kafka)
    values = [f"m{i}" for i in range(6)]
    await write(engine, messages(*values))

    await relayed(relay, lambda: relay.published == 6)

    assert kafka.replaced == 1
    assert cluster.clients[0].stopped
    assert [v for client, v in cluster.delivered if client == 1] == values
    assert relay.publish_problem() is None


async def test_a_timed_out_send_is_abandoned_by_the_client_too(engine: AsyncEngine) -> None:
    cluster = FakeCluster(lambda client, send, topic, value: HANG)
    relay = OutboxRelay(engine, outbox, producer(cluster), limits=RelayLimits(send_timeout=0.1))
    await write(engine, messages("m0", "m1"))

    with pytest.raises(PublishTimeout):
        await relay.publish_once()

    [client] = cluster.clients
    await until(lambda: all(d.cancelled() for d in client.pending))
    assert len(client.pending) == 2
