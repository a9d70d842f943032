"""The relay under faults: a broker that hangs, a lock held, messages refused for good."""

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import OutboxRelay, PublishTimeout, RelayLimits, write_outbox
from ordersaga.messaging.outbox_rows import failed_table, requeue
from ordersaga.messaging.port import OutgoingMessage, UndeliverableMessages
from ordersaga.messaging.transient import is_transient
from ordersaga.services.stock.tables import outbox
from tests.persistence.conftest import Databases
from tests.persistence.support import count

TOPIC = "product-reserved"
FORBIDDEN = "forbidden-topic"
ROW_LOCKING = ["postgresql", "mariadb"]


def message(key: str, value: str, topic: str = TOPIC) -> OutgoingMessage:
    return OutgoingMessage(topic, key, value.encode(), {"message-id": f"id-{value}"})


async def write(engine: AsyncEngine, batch: Sequence[OutgoingMessage]) -> None:
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, batch)


def published(broker: InProcessBroker, topic: str = TOPIC) -> list[str]:
    return [r.value.decode() for r in broker.records(topic)]


class HungProducer:
    """A broker that never acknowledges, and a client that ignores the first cancellation,
    as one whose send is stuck in a retry loop would: only :meth:`release` ends a send."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.cancelled = 0
        self._released = asyncio.Event()

    async def send_batch(self, batch: Sequence[OutgoingMessage]) -> None:
        self.sending.set()
        while not self._released.is_set():
            try:
                await self._released.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
        raise ConnectionError("gave up")

    def release(self) -> None:
        self._released.set()

    async def close(self) -> None:
        self.release()


@pytest.fixture
def hung() -> AsyncIterator[HungProducer]:
    producer = HungProducer()
    yield producer
    producer.release()


@pytest.mark.parametrize("backend", ROW_LOCKING)
async def test_a_relay_stuck_on_the_broker_holds_only_its_keys_and_releases_them(
    db: Databases, hung: HungProducer
) -> None:
    engine = await db.fresh("stock")
    broker = InProcessBroker(partitions=1)
    await write(engine, [message("a", "a1"), message("a", "a2"), message("b", "b1")])
    await write(engine, [message("b", "b2"), message("a", "a3"), message("c", "c1")])
    stuck = OutboxRelay(engine, outbox, hung, limits=RelayLimits(send_timeout=3), batch_size=1)
    other = OutboxRelay(db.engine("stock"), outbox, broker.producer())

    stuck_publish = asyncio.create_task(stuck.publish_once())
    await asyncio.wait_for(hung.sending.wait(), 10)  # it holds a1
    published_meanwhile = await other.publish_once()

    # The other keys go on; a2 and a3 wait behind a1, which the stuck relay holds.
    assert published(broker) == ["b1", "b2", "c1"]
    assert published_meanwhile == 3
    with pytest.raises(PublishTimeout):
        await stuck_publish
    assert hung.cancelled == 1  # abandoned, though the send has not stopped
    assert "did not acknowledge" in (stuck.publish_problem() or "")

    assert await other.publish_once() == 3
    assert published(broker) == ["b1", "b2", "c1", "a1", "a2", "a3"]
    assert await count(engine, outbox) == 0


async def test_a_send_that_times_out_leaves_its_rows_for_the_next_try(
    db: Databases, hung: HungProducer
) -> None:
    """On every backend, SQLite included, where one relay at a time may write."""
    engine = await db.fresh("stock")
    broker = InProcessBroker(partitions=1)
    await write(engine, [message("a", "a1"), message("b", "b1")])
    stuck = OutboxRelay(engine, outbox, hung, limits=RelayLimits(send_timeout=0.2))

    with pytest.raises(PublishTimeout):
        await stuck.publish_once()

    assert stuck.timeouts == 1
    assert await count(engine, outbox) == 2
    assert await OutboxRelay(engine, outbox, broker.producer()).publish_once() == 2
    assert published(broker) == ["a1", "b1"]


@pytest.mark.parametrize("backend", ROW_LOCKING)
async def test_a_relay_waits_for_a_lock_no_longer_than_its_lock_timeout(db: Databases) -> None:
    engine = await db.fresh("stock")
    await write(engine, [message("a", "a1")])
    relay = OutboxRelay(
        db.engine("stock"), outbox, InProcessBroker().producer(), limits=RelayLimits(lock_timeout=1)
    )
    async with engine.connect() as holder:
        # What a schema change would take: the whole table, not just rows.
        if db.backend == "postgresql":
            await holder.execute(text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
        else:
            await holder.execute(text("LOCK TABLES outbox WRITE"))
        try:
            with pytest.raises(DBAPIError, match=r"(?i)lock") as waited:
                await asyncio.wait_for(relay.publish_once(), 30)
            # Reported as a fault of the surroundings, whichever route the statement took.
            assert is_transient(waited.value)
        finally:
            if db.backend == "mariadb":
                await holder.execute(text("UNLOCK TABLES"))
            await holder.rollback()

    assert await relay.publish_once() == 1


class PickyProducer:
    """Publishes to the in-process broker, except to a topic that refuses this service:
    the adapters' contract for a message that can never be published."""

    def __init__(self, broker: InProcessBroker) -> None:
        self._inner = broker.producer()
        self.forbidden = {FORBIDDEN}
        self.sends = 0

    async def send_batch(self, batch: Sequence[OutgoingMessage]) -> None:
        self.sends += 1
        await self._inner.send_batch([m for m in batch if m.topic not in self.forbidden])
        refused = {
            i: "TopicAuthorizationFailedError: not allowed"
            for i, m in enumerate(batch)
            if m.topic in self.forbidden
        }
        if refused:
            raise UndeliverableMessages(refused)

    async def close(self) -> None:
        await self._inner.close()


async def test_a_message_refused_for_good_is_parked_with_its_error_not_retried(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")
    broker = InProcessBroker(partitions=1)
    producer = PickyProducer(broker)
    await write(
        engine,
        [
            message("a", "a1"),
            message("b", "b1", topic=FORBIDDEN),
            message("a", "a2"),
            message("b", "b2"),
        ],
    )
    relay = OutboxRelay(engine, outbox, producer)

    assert await relay.publish_once() == 4
    assert await relay.publish_once() == 0

    assert published(broker) == ["a1", "a2", "b2"]
    assert (relay.published, relay.parked, producer.sends) == (3, 1, 1)
    assert relay.publish_problem() is None
    assert await count(engine, outbox) == 0
    failed = failed_table(outbox)
    async with engine.connect() as conn:
        parked = (await conn.execute(select(failed))).one()
    assert (parked.topic, parked.message_key, parked.value) == (FORBIDDEN, "b", b"b1")
    assert "TopicAuthorizationFailedError" in parked.error

    # The operator grants the topic and puts the message back.
    producer.forbidden.clear()
    async with engine.begin() as conn:
        assert await requeue(conn, outbox) == 1
    assert await relay.publish_once() == 1
    assert published(broker, FORBIDDEN) == ["b1"]
    assert await count(engine, failed) == 0
