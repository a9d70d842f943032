"""A clean stop of an endpoint: the batch in hand is committed, with its offsets and its
answers published; an idle endpoint stops at once; a batch that cannot finish is given
up at the deadline, uncommitted, for the partition's next owner."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import HandlerContext, Subscription, one_by_one
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.port import OutgoingMessage
from tests.contract.test_consumer_loop import Counter, Flaky, inbox, metadata, outbox, times_seen
from tests.support import until

GROUP = "counter"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "svc.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


class Gate:
    """Holds every handler call until opened; counts the calls that reached it."""

    def __init__(self) -> None:
        self.reached = 0
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def __call__(self, ctx: HandlerContext, message: OrderUpdated) -> None:
        self.reached += 1
        await self._open.wait()
        await Counter(topics.PRODUCT_RESERVATION_CANCELLED, Flaky())(ctx, message)


def gated_endpoint(broker: InProcessBroker, engine: AsyncEngine, gate: Gate) -> Endpoint:
    endpoint = Endpoint(
        name=GROUP,
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[Subscription(topics.ORDER_UPDATED, OrderUpdated, one_by_one(gate))],
    )
    endpoint.start()
    return endpoint


def an_update() -> OutgoingMessage:
    order = OrderUpdated(
        orderID=uuid4(),
        userID=1,
        productID=1,
        quantity=1,
        amount=Decimal("20"),
        status=OrderStatus.ORDER_COMPLETED,
    )
    return envelope(topics.ORDER_UPDATED, order)


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)


async def test_the_batch_in_hand_is_committed_and_answered_before_the_stop_ends(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    gate = Gate()
    endpoint = gated_endpoint(broker, engine, gate)
    await until(lambda: gate.reached == 1)

    stopping = asyncio.create_task(endpoint.stop(grace=10))
    await asyncio.sleep(0)  # the stop has begun while the batch is in hand
    gate.open()
    await stopping

    assert await times_seen(engine) == [1]
    assert list(broker.committed(GROUP).values()) == [1]  # the one offset, committed
    assert len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 1
    assert await outbox_rows(engine) == 0


async def test_an_idle_endpoint_stops_at_once(engine: AsyncEngine) -> None:
    endpoint = gated_endpoint(InProcessBroker(), engine, Gate())
    await until(lambda: endpoint.consumer.idle)  # waiting on a poll
    async with asyncio.timeout(1.0):
        await endpoint.stop(grace=10)


async def test_a_batch_that_cannot_finish_is_left_uncommitted_at_the_deadline(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    gate = Gate()
    endpoint = gated_endpoint(broker, engine, gate)
    await until(lambda: gate.reached == 1)

    async with asyncio.timeout(4.0):
        await endpoint.stop(grace=2)

    assert await times_seen(engine) == []
    assert dict(broker.committed(GROUP)) == {}
    again = Gate()
    again.open()
    restarted = gated_endpoint(broker, engine, again)
    await until(lambda: len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 1)
    await restarted.stop()
    assert await times_seen(engine) == [1]
