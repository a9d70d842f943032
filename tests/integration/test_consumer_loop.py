"""The consumer loop, outbox relay and inbox, around a tiny counting service."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderUpdated, ProductReservationCancelled
from ordersaga.contracts.statuses import OrderStatus, ReservationCancelStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import HandlerContext, Subscription
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import outbox_table
from ordersaga.messaging.port import OutgoingMessage, Record
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
    calls like a bug; with ``only``, just the calls for that order fail."""

    def __init__(self, transient: int = 0, broken: int = 0, only: UUID | None = None) -> None:
        self.transient, self.broken, self.only = transient, broken, only

    def __call__(self, order_id: UUID) -> None:
        if self.only is not None and order_id != self.only:
            return
        if self.transient:
            self.transient -= 1
            raise OperationalError("SELECT 1", {}, Exception("database is away"))
        if self.broken:
            self.broken -= 1
            raise ValueError("a bug")


async def count_and_answer(ctx: HandlerContext, message: OrderUpdated, fault: Flaky) -> None:
    fault(message.orderID)
    key = str(message.orderID)
    changed = await ctx.conn.execute(
        update(seen).where(seen.c.order_id == key).values(times=seen.c.times + 1)
    )
    if not changed.rowcount:
        await ctx.conn.execute(insert(seen).values(order_id=key, times=1))
    ctx.send(
        topics.PRODUCT_RESERVATION_CANCELLED,
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


def an_update() -> OutgoingMessage:
    return envelope(
        topics.ORDER_UPDATED,
        OrderUpdated(
            orderID=uuid4(),
            userID=1,
            productID=1,
            quantity=1,
            amount=Decimal("20"),
            status=OrderStatus.ORDER_COMPLETED,
        ),
    )


async def run_endpoint(
    broker: InProcessBroker, engine: AsyncEngine, fault: Flaky, crash_points: object = None
) -> Endpoint:
    async def handle(ctx: HandlerContext, message: OrderUpdated) -> None:
        await count_and_answer(ctx, message, fault)

    endpoint = Endpoint(
        name="counter",
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[Subscription(topics.ORDER_UPDATED, handle)],
        crash_points=crash_points,
    )  # type: ignore[arg-type]
    endpoint.start()
    return endpoint


async def times_seen(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.scalars(select(seen.c.times))).all())


async def test_a_duplicate_is_applied_once_and_answered_once(engine: AsyncEngine) -> None:
    broker = InProcessBroker()
    message = an_update()
    await broker.producer().send_batch([message, message, message])
    endpoint = await run_endpoint(broker, engine, Flaky())
    await until(lambda: len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 1)
    await until(lambda: endpoint.consumer.stats.duplicates == 2)
    await until(lambda: endpoint.relay.published == 1)  # sent, and its row deleted
    await endpoint.stop()
    assert await times_seen(engine) == [1]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    good = an_update()
    bad = OutgoingMessage(topics.ORDER_UPDATED, good.key, b"{not json", good.headers)
    wrong = OutgoingMessage(topics.ORDER_UPDATED, good.key, b'{"orderID": "x"}', good.headers)
    await broker.producer().send_batch([bad, wrong, an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky())
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    dead = broker.records(topics.dead_letter(topics.ORDER_UPDATED))
    assert [r.value for r in dead] == [b"{not json", b'{"orderID": "x"}']
    assert "not UTF-8 JSON" in dead[0].headers["dlq-error"]
    assert "orderID" in dead[1].headers["dlq-error"]
    assert dead[0].headers["dlq-source-topic"] == topics.ORDER_UPDATED
    assert dead[0].headers["dlq-consumer"] == "counter"
    assert {r.headers["dlq-source-offset"] for r in dead} == {"0", "1"}


async def test_a_transient_fault_is_retried_until_it_passes(engine: AsyncEngine) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky(transient=3))
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    assert await times_seen(engine) == [1]
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []


async def test_a_message_that_keeps_failing_is_dead_lettered_not_blocking(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    bad, good = an_update(), an_update()
    await broker.producer().send_batch([good, bad, an_update()])
    broken = Flaky(broken=1_000, only=UUID(bad.key))
    endpoint = await run_endpoint(broker, engine, broken)
    await until(lambda: endpoint.consumer.stats.handled == 2, timeout=15)
    await until(lambda: endpoint.consumer.stats.dead_lettered == 1, timeout=15)
    await endpoint.stop()
    dead = broker.records(topics.dead_letter(topics.ORDER_UPDATED))
    assert len(dead) == 1 and "a bug" in dead[0].headers["dlq-error"]
    assert dead[0].key == bad.key
    assert await times_seen(engine) == [1, 1]
    assert len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 2


async def test_a_transient_fault_retries_the_whole_batch_and_applies_each_message_once(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update() for _ in range(5)])
    endpoint = await run_endpoint(broker, engine, Flaky(transient=2))
    await until(lambda: endpoint.consumer.stats.handled == 5)
    await endpoint.stop()
    assert await times_seen(engine) == [1] * 5
    assert len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 5
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []


class CrashOnce:
    def __init__(self) -> None:
        self.crashed = False

    def after_db_commit(self, record: Record) -> bool:
        crash, self.crashed = not self.crashed, True
        return crash


async def test_a_crash_between_database_and_offset_commit_redelivers_harmlessly(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky(), crash_points=CrashOnce())
    await until(lambda: endpoint.consumer.stats.duplicates == 1)
    await endpoint.stop()
    assert endpoint.consumer.stats.crashes == 1
    assert await times_seen(engine) == [1]
    assert len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 1
    assert broker.committed("counter") == {
        (topics.ORDER_UPDATED, r.partition): 1 for r in broker.records(topics.ORDER_UPDATED)
    }
