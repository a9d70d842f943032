"""The order service's ``order-updated`` handler on a real SQLite database."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import SAMPLE_PRICES, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import OrderStatusApplied, OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import Trace, envelope, new_traceparent
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.services.order import repository
from ordersaga.services.order.handlers import handle_order_updated
from ordersaga.services.order.model import Order, OrderRequest
from ordersaga.services.order.placing import place_order
from ordersaga.services.order.tables import metadata, orders, outbox, products
from ordersaga.services.order.wiring import seed, spec
from tests.support import order_units, until


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "order.sqlite3"))
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await seed(conn)
    yield engine
    await engine.dispose()


async def new_order(engine: AsyncEngine) -> Order:
    placement = await place_order(
        order_units(engine), OrderRequest(user_id=1, product_id=1, quantity=2), idempotency_key=None
    )
    return placement.order


def updated(order_id: UUID, status: OrderStatus, reason: str | None = None) -> OrderUpdated:
    return OrderUpdated(
        orderID=order_id,
        userID=1,
        productID=1,
        quantity=2,
        amount=Decimal("40.00"),
        status=status,
        reason=reason,
    )


async def handle(engine: AsyncEngine, message: OrderUpdated) -> HandlerContext:
    """Run the handler in one transaction, as the consumer loop does."""
    cause = Trace(str(uuid4()), str(message.orderID), new_traceparent())
    async with engine.begin() as conn:
        ctx = HandlerContext(conn, cause)
        await handle_order_updated(conn, [BatchItem(topics.ORDER_UPDATED, message, ctx)])
    return ctx


def acknowledged(ctx: HandlerContext) -> list[tuple[UUID, OrderStatus]]:
    """The order-status-applied messages the handler sent: order id and status."""
    assert {m.topic for m in ctx.outgoing} <= {topics.ORDER_STATUS_APPLIED}
    sent = [decode(m.topic, m.value) for m in ctx.outgoing]
    return [(m.orderID, m.status) for m in sent if isinstance(m, OrderStatusApplied)]


async def stored(engine: AsyncEngine, order_id: UUID) -> Order:
    async with engine.connect() as conn:
        order = await repository.get_order(conn, order_id)
    assert order is not None
    return order


async def test_created_order_completes(engine: AsyncEngine) -> None:
    order = await new_order(engine)

    ctx = await handle(engine, updated(order.id, OrderStatus.ORDER_COMPLETED))

    after = await stored(engine, order.id)
    assert after.status is OrderStatus.ORDER_COMPLETED
    assert after.reason is None
    assert after.updated_at > after.created_at
    assert after.created_at == order.created_at  # microseconds survive the round trip
    assert acknowledged(ctx) == [(order.id, OrderStatus.ORDER_COMPLETED)]


async def test_created_order_is_cancelled_with_reason(engine: AsyncEngine) -> None:
    order = await new_order(engine)

    await handle(engine, updated(order.id, OrderStatus.ORDER_CANCELLED, "insufficient funds"))

    after = await stored(engine, order.id)
    assert (after.status, after.reason) == (OrderStatus.ORDER_CANCELLED, "insufficient funds")


async def test_completed_keeps_no_reason(engine: AsyncEngine) -> None:
    order = await new_order(engine)

    await handle(engine, updated(order.id, OrderStatus.ORDER_COMPLETED, "a stray reason"))

    assert (await stored(engine, order.id)).reason is None


async def test_long_reason_is_cut_to_column(engine: AsyncEngine) -> None:
    order = await new_order(engine)

    await handle(engine, updated(order.id, OrderStatus.ORDER_CANCELLED, "x" * 1000))

    assert (await stored(engine, order.id)).reason == "x" * 255


async def test_later_cancel_does_not_change_completed_order(engine: AsyncEngine) -> None:
    order = await new_order(engine)
    await handle(engine, updated(order.id, OrderStatus.ORDER_COMPLETED))
    completed = await stored(engine, order.id)

    ctx = await handle(engine, updated(order.id, OrderStatus.ORDER_CANCELLED, "timed out"))

    assert await stored(engine, order.id) == completed
    # Acknowledged as the order is: the saga stops sending, an operator sees the status.
    assert acknowledged(ctx) == [(order.id, OrderStatus.ORDER_COMPLETED)]


async def test_an_update_applied_before_is_acknowledged_again(engine: AsyncEngine) -> None:
    order = await new_order(engine)
    update = updated(order.id, OrderStatus.ORDER_CANCELLED, "out of stock")
    await handle(engine, update)
    cancelled = await stored(engine, order.id)

    again = await handle(engine, update)

    assert await stored(engine, order.id) == cancelled
    assert acknowledged(again) == [(order.id, OrderStatus.ORDER_CANCELLED)]


async def test_later_complete_does_not_change_cancelled_order(engine: AsyncEngine) -> None:
    order = await new_order(engine)
    await handle(engine, updated(order.id, OrderStatus.ORDER_CANCELLED, "out of stock"))
    cancelled = await stored(engine, order.id)

    await handle(engine, updated(order.id, OrderStatus.ORDER_COMPLETED))

    assert await stored(engine, order.id) == cancelled


async def test_update_to_created_changes_nothing(engine: AsyncEngine) -> None:
    order = await new_order(engine)

    ctx = await handle(engine, updated(order.id, OrderStatus.ORDER_CREATED))

    assert await stored(engine, order.id) == order
    assert ctx.outgoing == []


async def test_unknown_order_is_ignored(engine: AsyncEngine) -> None:
    known = await new_order(engine)

    ctx = await handle(engine, updated(uuid4(), OrderStatus.ORDER_COMPLETED))

    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(orders))
    assert count == 1
    assert await stored(engine, known.id) == known
    assert ctx.outgoing == []


async def test_racing_updates_leave_one_final_status(engine: AsyncEngine) -> None:
    order = await new_order(engine)

    await asyncio.gather(
        handle(engine, updated(order.id, OrderStatus.ORDER_COMPLETED)),
        handle(engine, updated(order.id, OrderStatus.ORDER_CANCELLED, "timed out")),
    )

    after = await stored(engine, order.id)
    assert after.status.is_terminal
    assert (after.reason is None) == (after.status is OrderStatus.ORDER_COMPLETED)


async def test_through_consumer_once_however_often_delivered(engine: AsyncEngine) -> None:
    service = spec(Settings())
    order = await new_order(engine)
    broker = InProcessBroker()
    await broker.create_topics([topics.ORDER_UPDATED, topics.dead_letter(topics.ORDER_UPDATED)], 2)
    endpoint = Endpoint(
        name=service.name,
        broker=broker,
        engine=engine,
        inbox=service.inbox,
        outbox=service.outbox,
        subscriptions=service.subscriptions,
    )
    record = envelope(topics.ORDER_UPDATED, updated(order.id, OrderStatus.ORDER_COMPLETED))
    producer = broker.producer()
    endpoint.start()
    try:
        await producer.send_batch([record, record])
        stats = endpoint.consumer.stats
        await until(lambda: stats.handled + stats.duplicates == 2)
    finally:
        await endpoint.stop()
        await producer.close()
        await broker.close()

    assert (stats.handled, stats.duplicates, stats.dead_lettered) == (1, 1, 0)
    assert (await stored(engine, order.id)).status is OrderStatus.ORDER_COMPLETED


async def test_spec_subscribes_to_order_updated() -> None:
    service = spec(Settings())

    assert service.name == "order"
    assert [s.topic for s in service.subscriptions] == [topics.ORDER_UPDATED]
    assert {"products", "orders", "outbox", "processed_messages"} <= set(service.metadata.tables)
    assert service.outbox is outbox


async def catalog(engine: AsyncEngine) -> dict[int, tuple[str, Decimal]]:
    async with engine.connect() as conn:
        return {p.id: (p.name, p.price) for p in await repository.list_products(conn)}


async def test_seed_fills_empty_catalog_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await seed(conn)

    assert await catalog(engine) == SAMPLE_PRICES


async def test_seed_leaves_existing_catalog_alone(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "custom.sqlite3"))
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await conn.execute(insert(products).values(id=7, name="Own", price=Decimal("1.50")))
        await seed(conn)

    assert await catalog(engine) == {7: ("Own", Decimal("1.50"))}
    await engine.dispose()
