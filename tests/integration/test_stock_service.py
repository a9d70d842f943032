"""The stock service's handlers against a real SQLite database, and through its consumer."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import SAMPLE_STOCK, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    CancelProductReservation,
    ProductReservationCancelled,
    ProductReserved,
    ReserveProduct,
)
from ordersaga.contracts.statuses import OrderStatus, ReservationCancelStatus, StockStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.services.stock.rules import ReservationStatus
from ordersaga.services.stock.tables import metadata, reservations, stock
from ordersaga.services.stock.wiring import handle_stock, seed, spec
from tests.support import run_handler, until


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    await create_schema(engine, metadata)
    async with engine.begin() as conn:
        await seed(conn)
    yield engine
    await engine.dispose()


def reserve_command(
    product_id: int = 3, quantity: int = 1, order_id: UUID | None = None
) -> ReserveProduct:
    return ReserveProduct(
        orderID=order_id or uuid4(),
        userID=1,
        productID=product_id,
        quantity=quantity,
        amount=Decimal("50.00") * quantity,
        status=OrderStatus.ORDER_CREATED,
    )


def cancel_command(
    order_id: UUID, product_id: int = 3, quantity: int = 1
) -> CancelProductReservation:
    return CancelProductReservation(
        orderID=order_id,
        userID=1,
        productID=product_id,
        quantity=quantity,
        amount=Decimal("50.00") * quantity,
        status=OrderStatus.ORDER_CANCELLED,
    )


async def reserve(engine: AsyncEngine, message: ReserveProduct) -> ProductReserved:
    reply = await run_handler(engine, handle_stock, message)
    assert isinstance(reply, ProductReserved)
    return reply


async def cancel(
    engine: AsyncEngine, message: CancelProductReservation
) -> ProductReservationCancelled:
    reply = await run_handler(engine, handle_stock, message)
    assert isinstance(reply, ProductReservationCancelled)
    return reply


async def on_hand(engine: AsyncEngine, product_id: int) -> int:
    async with engine.connect() as conn:
        quantity = await conn.scalar(
            select(stock.c.quantity).where(stock.c.product_id == product_id)
        )
    assert isinstance(quantity, int)
    return quantity


async def reservation_status(engine: AsyncEngine, order_id: UUID) -> ReservationStatus:
    query = select(reservations.c.status).where(reservations.c.order_id == str(order_id))
    async with engine.connect() as conn:
        status = (await conn.execute(query)).scalar_one()
    return ReservationStatus(status)


async def test_seed_puts_the_sample_stock_on_hand_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await seed(conn)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(stock).order_by(stock.c.product_id))).all()
    assert {r.product_id: (r.quantity, r.initial_quantity) for r in rows} == {
        product_id: (quantity, quantity) for product_id, quantity in SAMPLE_STOCK.items()
    }


async def test_a_reserve_of_stock_on_hand_is_answered_available_and_deducted(
    engine: AsyncEngine,
) -> None:
    command = reserve_command(product_id=3, quantity=2)

    reply = await reserve(engine, command)

    assert reply.status is StockStatus.AVAILABLE
    assert (reply.orderID, reply.userID, reply.productID, reply.quantity) == (
        command.orderID,
        1,
        3,
        2,
    )
    assert reply.reason is None
    assert await on_hand(engine, 3) == 1
    assert await reservation_status(engine, command.orderID) is ReservationStatus.RESERVED


async def test_a_reserve_of_more_than_on_hand_is_refused_and_deducts_nothing(
    engine: AsyncEngine,
) -> None:
    await reserve(engine, reserve_command(product_id=3, quantity=2))
    command = reserve_command(product_id=3, quantity=2)

    reply = await reserve(engine, command)

    assert reply.status is StockStatus.UNAVAILABLE
    assert reply.reason == "insufficient stock for product 3: 1 on hand, 2 requested"
    assert await on_hand(engine, 3) == 1
    assert await reservation_status(engine, command.orderID) is ReservationStatus.REJECTED


async def test_a_reserve_of_an_unknown_product_is_refused(engine: AsyncEngine) -> None:
    command = reserve_command(product_id=9)

    reply = await reserve(engine, command)

    assert reply.status is StockStatus.UNAVAILABLE
    assert reply.reason == "unknown product 9"
    assert await reservation_status(engine, command.orderID) is ReservationStatus.REJECTED


async def test_a_reserve_sent_again_is_answered_again_without_deducting_again(
    engine: AsyncEngine,
) -> None:
    command = reserve_command(product_id=1, quantity=2)

    first = await reserve(engine, command)
    second = await reserve(engine, command)

    assert first.status is second.status is StockStatus.AVAILABLE
    assert await on_hand(engine, 1) == 3


async def test_a_refused_reserve_sent_again_gives_the_same_reason_even_if_stock_came_back(
    engine: AsyncEngine,
) -> None:
    holder = reserve_command(product_id=3, quantity=3)
    await reserve(engine, holder)
    command = reserve_command(product_id=3, quantity=1)
    first = await reserve(engine, command)
    await cancel(engine, cancel_command(holder.orderID, product_id=3, quantity=3))

    second = await reserve(engine, command)

    assert second.status is StockStatus.UNAVAILABLE
    assert second.reason == first.reason
    assert await on_hand(engine, 3) == 3


async def test_a_cancel_releases_exactly_the_reserved_quantity_once(engine: AsyncEngine) -> None:
    command = reserve_command(product_id=2, quantity=4)
    await reserve(engine, command)

    first = await cancel(engine, cancel_command(command.orderID, product_id=2, quantity=4))
    second = await cancel(engine, cancel_command(command.orderID, product_id=2, quantity=4))

    assert (first.status, first.quantity) == (ReservationCancelStatus.RESERVATION_RELEASED, 4)
    assert (second.status, second.quantity) == (ReservationCancelStatus.NOTHING_RESERVED, 0)
    assert await on_hand(engine, 2) == 5
    assert await reservation_status(engine, command.orderID) is ReservationStatus.RELEASED


async def test_a_cancel_gives_back_what_was_reserved_not_what_it_says(engine: AsyncEngine) -> None:
    command = reserve_command(product_id=2, quantity=1)
    await reserve(engine, command)

    reply = await cancel(engine, cancel_command(command.orderID, product_id=2, quantity=5))

    assert reply.quantity == 1
    assert await on_hand(engine, 2) == 5


async def test_a_cancel_of_a_refused_reserve_gives_nothing_back(engine: AsyncEngine) -> None:
    command = reserve_command(product_id=3, quantity=4)
    await reserve(engine, command)

    reply = await cancel(engine, cancel_command(command.orderID, product_id=3, quantity=4))

    assert (reply.status, reply.quantity) == (ReservationCancelStatus.NOTHING_RESERVED, 0)
    assert await on_hand(engine, 3) == 3


async def test_a_cancel_before_its_reserve_leaves_a_tombstone_that_refuses_it(
    engine: AsyncEngine,
) -> None:
    order_id = uuid4()

    cancelled = await cancel(engine, cancel_command(order_id, product_id=1, quantity=2))
    reserved = await reserve(engine, reserve_command(product_id=1, quantity=2, order_id=order_id))
    again = await cancel(engine, cancel_command(order_id, product_id=1, quantity=2))

    assert (cancelled.status, cancelled.quantity) == (ReservationCancelStatus.NOTHING_RESERVED, 0)
    assert reserved.status is StockStatus.UNAVAILABLE
    assert reserved.reason == "reservation was cancelled before it was made"
    assert (again.status, again.quantity) == (ReservationCancelStatus.NOTHING_RESERVED, 0)
    assert await on_hand(engine, 1) == 5
    assert await reservation_status(engine, order_id) is ReservationStatus.CANCELLED


async def test_a_reserve_after_its_release_is_refused(engine: AsyncEngine) -> None:
    command = reserve_command(product_id=1, quantity=2)
    await reserve(engine, command)
    await cancel(engine, cancel_command(command.orderID, product_id=1, quantity=2))

    reply = await reserve(engine, command)

    assert reply.status is StockStatus.UNAVAILABLE
    assert await on_hand(engine, 1) == 5


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[list[AsyncEngine]]:
    """Twelve engines on one seeded file: each has its own connection, so transactions
    really contend for the database instead of queueing for one connection."""
    url = sqlite_url(tmp_path / "stock.sqlite3")
    engines = [make_engine(url) for _ in range(12)]
    await create_schema(engines[0], metadata)
    async with engines[0].begin() as conn:
        await seed(conn)
    yield engines
    for engine in engines:
        await engine.dispose()


async def persist(engine: AsyncEngine, command: ReserveProduct) -> ProductReserved:
    """Reserve until a transaction commits, retrying failures as the consumer does."""
    while True:
        try:
            return await reserve(engine, command)
        except (OperationalError, IntegrityError):
            await asyncio.sleep(0.01)


async def test_concurrent_reserves_for_the_last_units_never_oversell(
    engines: list[AsyncEngine],
) -> None:
    replies = await asyncio.gather(
        *(persist(e, reserve_command(product_id=1, quantity=2)) for e in engines)
    )

    assert [r.status for r in replies].count(StockStatus.AVAILABLE) == 2
    assert await on_hand(engines[0], 1) == 1


async def test_concurrent_deliveries_of_one_reserve_deduct_once(
    engines: list[AsyncEngine],
) -> None:
    command = reserve_command(product_id=2, quantity=2)

    replies = await asyncio.gather(*(persist(e, command) for e in engines))

    assert {r.status for r in replies} == {StockStatus.AVAILABLE}
    assert await on_hand(engines[0], 2) == 3


async def test_the_database_refuses_a_negative_quantity(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(update(stock).where(stock.c.product_id == 3).values(quantity=-1))
    assert await on_hand(engine, 3) == 3


async def test_a_reserve_delivered_twice_through_the_consumer_takes_effect_once(
    engine: AsyncEngine,
) -> None:
    service = spec(Settings())
    broker = InProcessBroker()
    endpoint = Endpoint(
        name=service.name,
        broker=broker,
        engine=engine,
        inbox=service.inbox,
        outbox=service.outbox,
        subscriptions=service.subscriptions,
    )
    command = reserve_command(product_id=3, quantity=2)
    record = envelope(topics.RESERVE_PRODUCT, command)
    producer = broker.producer()
    endpoint.start()
    try:
        await producer.send_batch([record])
        await producer.send_batch([record])
        await until(
            lambda: endpoint.consumer.stats.duplicates == 1 and endpoint.relay.published == 1
        )
    finally:
        await endpoint.stop()
        await broker.close()

    [reply] = broker.records(topics.PRODUCT_RESERVED)
    decoded = decode(reply.topic, reply.value)
    assert isinstance(decoded, ProductReserved)
    assert decoded.status is StockStatus.AVAILABLE
    assert reply.key == str(command.orderID)
    assert await on_hand(engine, 3) == 1
    assert endpoint.consumer.stats.handled == 1
