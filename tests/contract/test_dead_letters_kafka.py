"""Reading and replaying dead letters on Kafka, as on the embedded broker.

The same story as the embedded tests, through the functions the ``dlq`` commands use:
poison lands on the dead-letter topic, is found there with its reason, and a replay
after the fix is handled exactly once however often it is replayed. The topics are the
test's own (read as ``order-updated``), so nothing else on the cluster sees them.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from click.testing import Result
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ordersaga.cli import dlq as dlq_commands
from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts.messages import OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.contracts.topics import dead_letter
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
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
from ordersaga.messaging.port import OutgoingMessage
from tests.contract.conftest import KafkaTopics, unique
from tests.support import until

PATIENCE = 30.0

# Patience only matters for an empty topic, which these tests never read.
LIMITS = ReadLimits(patience=30.0, quiet=1.0)

metadata = MetaData()
seen = Table(
    "seen",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("times", Integer, nullable=False),
)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


@dataclass
class Names:
    source: str
    dlq: str
    group: str


@pytest.fixture
async def names(kafka_topics: KafkaTopics) -> Names:
    """A source topic read as ``order-updated``, and its dead-letter topic."""
    source = unique("order-updated")
    found = Names(source, dead_letter(source), unique("counter"))
    await kafka_topics.create(found.source, found.dlq)
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


@dataclass
class Counter:
    """Counts each order it sees; refuses every one as invalid until its rule is fixed."""

    broken: bool = True

    async def handle(self, ctx: HandlerContext, message: OrderUpdated) -> None:
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


async def dlq(*args: str) -> Result:
    """``ordersaga dlq ARGS``, in a thread: the command runs an event loop of its own."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, dlq_commands.dlq_app, list(args), env={"COLUMNS": "400"}
    )


async def test_dead_letters_are_found_and_a_replay_after_the_fix_is_handled_once(
    broker: KafkaBroker, engine: AsyncEngine, names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = Counter()
    update_ = an_update(names.source)
    poison = OutgoingMessage(names.source, str(uuid4()), b"{not json", an_update("x").headers)
    await broker.producer().send_batch([update_, poison])
    endpoint = Endpoint(
        name=names.group,
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[Subscription(names.source, OrderUpdated, one_by_one(counter.handle))],
    )
    endpoint.start()
    stats = endpoint.consumer.stats
    try:
        await until(lambda: stats.dead_lettered == 2, PATIENCE)

        letters = (await inspect(broker, [names.dlq], LIMITS)).letters
        by_key = {letter.record.key: letter for letter in letters}
        assert set(by_key) == {update_.key, poison.key}
        failed, bad = by_key[update_.key], by_key[poison.key]
        assert failed.error == "invalid message: refused by the handler"
        assert bad.error.startswith("not UTF-8 JSON")
        assert failed.consumer == names.group
        assert failed.source_address.startswith(f"{names.source}/")
        record = failed.record
        assert (
            await find_dead_letter(broker, names.dlq, record.partition, record.offset, LIMITS)
            == failed
        )
        with pytest.raises(NoSuchRecord):
            await find_dead_letter(broker, names.dlq, record.partition, 999, LIMITS)

        # The commands, on the Kafka of the settings, with this test's topic allowed.
        monkeypatch.setattr(dlq_commands, "DLQ_TOPICS", [names.dlq])
        listed = await dlq("list", "--topic", names.dlq)
        assert listed.exit_code == 0, listed.output
        assert "refused by the handler" in listed.output and "not UTF-8 JSON" in listed.output
        assert f"{names.dlq}: 2 dead letters" in listed.output
        shown = await dlq("show", names.dlq, str(record.partition), str(record.offset))
        assert shown.exit_code == 0, shown.output
        assert f"message-id: {update_.headers[h.MESSAGE_ID]}" in shown.output
        assert '  "amount": 20.0,' in shown.output

        counter.broken = False
        await replay(broker, [failed])
        await until(lambda: stats.handled == 1, PATIENCE)
        await replay(broker, [failed])  # the same message-id: the inbox skips it
        await until(lambda: stats.duplicates == 1, PATIENCE)
        assert await times_seen(engine) == [1]

        found = await inspect(broker, [names.dlq], LIMITS, count_replays=True)
        assert len(found.letters) == 2, "a replay leaves the dead letter where it is"
        assert found.replays_of(failed) == 2
        assert found.replays_of(bad) == 0
        assert found.replays is not None
        assert set(found.replays) == {failed.address}
        async with contextlib.aclosing(read_topics(broker, [names.source], LIMITS)) as read:
            replays = [r async for r in read if h.DLQ_REPLAYED_FROM in r.headers]
        assert [r.headers[h.DLQ_REPLAYED_FROM] for r in replays] == [failed.address] * 2
        assert {r.headers[h.MESSAGE_ID] for r in replays} == {update_.headers[h.MESSAGE_ID]}
        assert all((r.key, r.value) == (update_.key, update_.value) for r in replays)
        assert not any(h.DLQ_ERROR in r.headers for r in replays)
    finally:
        await endpoint.stop()
    assert stats.handled == 1
