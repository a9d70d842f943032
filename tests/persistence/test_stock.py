"""The stock service's handlers on every backend: reserving, releasing, never overselling."""

import asyncio
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.messages import (
    CancelProductReservation,
    ProductReservationCancelled,
    ProductReserved,
    ReserveProduct,
)
from ordersaga.contracts.statuses import ReservationCancelStatus, StockStatus
from ordersaga.services.stock.rules import ReservationStatus
from ordersaga.services.stock.tables import inbox, outbox, reservations, stock
from ordersaga.services.stock.wiring import handle_stock
from tests.persistence.conftest import Databases
from tests.persistence.support import cancel_reservation, deliver, reserve, until_committed


async def reserved(engine: AsyncEngine, command: ReserveProduct) -> ProductReserved:
    reply = await until_committed(lambda: deliver(engine, inbox, outbox, handle_stock, command))
    assert isinstance(reply, ProductReserved)
    return reply


async def cancelled(
    engine: AsyncEngine, command: CancelProductReservation
) -> ProductReservationCancelled:
    reply = await until_committed(lambda: deliver(engine, inbox, outbox, handle_stock, command))
    assert isinstance(reply, ProductReservationCancelled)
    return reply


async def on_hand(engine: AsyncEngine, product_id: int) -> int:
    async with engine.connect() as conn:
        quantity = await conn.scalar(
            select(stock.c.quantity).where(stock.c.product_id == product_id)
        )
    assert isinstance(quantity, int)
    return quantity


async def reservation(engine: AsyncEngine, order_id: UUID) -> ReservationStatus:
    async with engine.connect() as conn:
        status = await conn.scalar(
            select(reservations.c.status).where(reservations.c.order_id == str(order_id))
        )
    return ReservationStatus(status)


async def test_a_reserve_deducts_and_its_cancel_gives_back_once(db: Databases) -> None:
    engine = await db.fresh("stock")
    command = reserve(product_id=2, quantity=4)

    taken = await reserved(engine, command)
    after_reserve = await on_hand(engine, 2)
    first = await cancelled(engine, cancel_reservation(command.orderID, 2, 4))
    second = await cancelled(engine, cancel_reservation(command.orderID, 2, 4))

    assert taken.status is StockStatus.AVAILABLE
    assert after_reserve == 1
    assert (first.status, first.quantity) == (ReservationCancelStatus.RESERVATION_RELEASED, 4)
    assert (second.status, second.quantity) == (ReservationCancelStatus.NOTHING_RESERVED, 0)
    assert await on_hand(engine, 2) == 5
    assert await reservation(engine, command.orderID) is ReservationStatus.RELEASED


async def test_a_reserve_of_more_than_on_hand_is_refused_with_the_figures(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")

    reply = await reserved(engine, reserve(product_id=3, quantity=4))

    assert reply.status is StockStatus.UNAVAILABLE
    assert reply.reason == "insufficient stock for product 3: 3 on hand, 4 requested"
    assert await on_hand(engine, 3) == 3


async def test_a_cancel_before_its_reserve_leaves_a_tombstone(db: Databases) -> None:
    engine = await db.fresh("stock")
    command = reserve(product_id=1, quantity=2)

    first = await cancelled(engine, cancel_reservation(command.orderID, 1, 2))
    late = await reserved(engine, command)

    assert first.status is ReservationCancelStatus.NOTHING_RESERVED
    assert late.status is StockStatus.UNAVAILABLE
    assert await on_hand(engine, 1) == 5
    assert await reservation(engine, command.orderID) is ReservationStatus.CANCELLED


async def test_concurrent_reserves_for_the_last_units_never_oversell(db: Databases) -> None:
    await db.fresh("stock")
    engines = db.engines("stock", 12)

    replies = await asyncio.gather(
        *(reserved(e, reserve(product_id=3, quantity=1)) for e in engines)
    )

    assert [r.status for r in replies].count(StockStatus.AVAILABLE) == 3
    assert await on_hand(engines[0], 3) == 0
    async with engines[0].connect() as conn:
        held = await conn.scalar(
            select(func.sum(reservations.c.quantity)).where(
                reservations.c.status == ReservationStatus.RESERVED.value
            )
        )
    assert held == 3


async def test_concurrent_commands_for_one_order_reserve_once_and_release_once(
    db: Databases,
) -> None:
    """Different message ids (a command sent again after a timeout), not duplicates:
    the inbox lets them all through and the reservation row must decide."""
    await db.fresh("stock")
    engines = db.engines("stock", 8)
    command = reserve(product_id=2, quantity=2)

    reserves = await asyncio.gather(*(reserved(e, command) for e in engines))
    after_reserves = await on_hand(engines[0], 2)
    cancels = await asyncio.gather(
        *(cancelled(e, cancel_reservation(command.orderID, 2, 2)) for e in engines)
    )

    assert {r.status for r in reserves} == {StockStatus.AVAILABLE}
    assert after_reserves == 3
    assert sorted(c.quantity for c in cancels) == [0] * 7 + [2]
    assert await on_hand(engines[0], 2) == 5
