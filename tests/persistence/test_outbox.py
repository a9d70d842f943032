"""The outbox: written with the state change or not at all; published once, in order."""

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import OutboxRelay, write_outbox
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.services.stock.tables import outbox
from tests.persistence.conftest import Databases
from tests.persistence.support import count

TOPIC = "product-reserved"


def messages(first: int, last: int, keys: int = 3) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(TOPIC, f"key-{i % keys}", f"m{i}".encode(), {"message-id": f"id-{i}"})
        for i in range(first, last)
    ]


async def write(engine: AsyncEngine, batch: Sequence[OutgoingMessage]) -> None:
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, batch)


def published(broker: InProcessBroker) -> list[bytes]:
    return [r.value for r in broker.records(TOPIC)]


class SlowProducer:
    """Publishes to the in-process broker after a pause, so two relays overlap in time."""

    def __init__(self, broker: InProcessBroker) -> None:
        self._inner = broker.producer()

    async def send_batch(self, batch: Sequence[OutgoingMessage]) -> None:
        await asyncio.sleep(0.02)
        await self._inner.send_batch(batch)

    async def close(self) -> None:
        await self._inner.close()


async def test_headers_come_out_of_the_outbox_as_they_went_in(db: Databases) -> None:
    engine = await db.fresh("stock")
    broker = InProcessBroker(partitions=1)
    headers = {
        "message-id": "id-0",
        "ünïcødé": "日本語 ✓ 🚀",
        "empty": "",
        "json": '{"a": [1, 2.50, null]}',
        "escapes": 'quote " backslash \\ tab \t newline \n \u2028',
    }
    await write(engine, [OutgoingMessage(TOPIC, "k", b"v", headers)])

    assert await OutboxRelay(engine, outbox, broker.producer()).publish_once() == 1

    assert [dict(r.headers) for r in broker.records(TOPIC)] == [headers]


async def test_messages_of_a_rolled_back_transaction_are_never_published(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")
    broker = InProcessBroker(partitions=1)

    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await write_outbox(conn, outbox, messages(0, 3))
            raise RuntimeError("the handler failed after sending")

    assert await count(engine, outbox) == 0
    assert await OutboxRelay(engine, outbox, broker.producer()).publish_once() == 0
    assert published(broker) == []


async def test_the_relay_publishes_in_insertion_order_and_then_deletes(db: Databases) -> None:
    engine = await db.fresh("stock")
    broker = InProcessBroker(partitions=1)
    for first in range(0, 12, 4):
        await write(engine, messages(first, first + 4))
    relay = OutboxRelay(engine, outbox, broker.producer(), batch_size=5)

    while await relay.publish_once():
        pass

    assert published(broker) == [f"m{i}".encode() for i in range(12)]
    assert [r.headers["message-id"] for r in broker.records(TOPIC)] == [
        f"id-{i}" for i in range(12)
    ]
    assert await count(engine, outbox) == 0
    assert relay.published == 12


async def test_two_relays_on_one_database_never_publish_a_row_twice(db: Databases) -> None:
    """On a server each relay has its own connections and the row locks make them take
    turns. SQLite has no row locks: there a service has one engine with one connection
    (``make_engine``), and that is what the relays of the one process share."""
    engine = await db.fresh("stock")
    second = db.engine("stock") if db.has_row_locks else engine
    broker = InProcessBroker(partitions=1)
    await write(engine, messages(0, 40))
    relays = [OutboxRelay(e, outbox, SlowProducer(broker), batch_size=5) for e in (engine, second)]

    async def drain(relay: OutboxRelay) -> None:
        while await count(engine, outbox):
            await relay.publish_once()

    await asyncio.gather(*(drain(r) for r in relays))

    values = published(broker)
    assert sorted(values) == sorted(f"m{i}".encode() for i in range(40))
    assert len(values) == len(set(values)) == 40
    for key in range(3):
        ours = [int(v[1:]) for v in values if int(v[1:]) % 3 == key]
        assert ours == sorted(ours), f"key-{key} published out of order"
    assert sum(r.published for r in relays) == 40
