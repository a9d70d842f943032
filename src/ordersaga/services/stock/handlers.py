"""Handlers of the stock service: reserving stock for an order, and giving it back.

Every change is a conditional update, never read-modify-write. One reservation row per
order (its primary key) makes each effect happen at most once per order, whatever the
number of commands. Each handler first locks the product's stock row, so commands for
one product, and so two for the same order, queue instead of colliding. Where no lock
is taken (SQLite, an unknown product) the primary key still decides: the loser is
rolled back, deduction included, and answers from the winner's row when retried.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelProductReservation,
    ProductReservationCancelled,
    ProductReserved,
    ReserveProduct,
)
from ordersaga.contracts.statuses import StockStatus
from ordersaga.messaging.handler import HandlerContext
from ordersaga.services.stock.rules import (
    ReservationStatus,
    answer_existing,
    cancel_answer,
    rejection_reason,
    releases_stock,
)
from ordersaga.services.stock.tables import reservations, stock

log = logging.getLogger(__name__)

# Built once and run with bound parameters: building a statement costs more than running it.
_LOCK_PRODUCT = (
    select(stock.c.product_id)
    .where(stock.c.product_id == bindparam("wanted_product"))
    .with_for_update()
)
_FIND = select(
    reservations.c.product_id,
    reservations.c.quantity,
    reservations.c.status,
    reservations.c.reason,
).where(reservations.c.order_id == bindparam("wanted_order"))
_TAKE = (
    update(stock)
    .where(
        stock.c.product_id == bindparam("wanted_product"),
        stock.c.quantity >= bindparam("wanted_quantity"),
    )
    .values(quantity=stock.c.quantity - bindparam("wanted_quantity"))
)
_ON_HAND = select(stock.c.quantity).where(stock.c.product_id == bindparam("wanted_product"))
_GIVE_BACK = (
    update(stock)
    .where(stock.c.product_id == bindparam("wanted_product"))
    .values(quantity=stock.c.quantity + bindparam("given_quantity"))
)
_RECORD = insert(reservations)


@dataclass(frozen=True, slots=True)
class Reservation:
    """An order's reservation row, as read in the handler's transaction."""

    product_id: int
    quantity: int
    status: ReservationStatus
    reason: str | None


async def handle_reserve_product(ctx: HandlerContext, message: ReserveProduct) -> None:
    """Deduct the order's quantity if it is on hand, and answer AVAILABLE or UNAVAILABLE.

    An order that already has a reservation row is answered from it and deducts nothing.
    """
    await _lock_product(ctx.conn, message.productID)
    existing = await _find(ctx.conn, str(message.orderID))
    if existing is not None:
        status, reason = answer_existing(existing.status, existing.reason)
    elif await take(ctx.conn, message.productID, message.quantity):
        await _record(ctx.conn, message, ReservationStatus.RESERVED)
        status, reason = StockStatus.AVAILABLE, None
    else:
        on_hand = await on_hand_of(ctx.conn, message.productID)
        reason = rejection_reason(message.productID, on_hand, message.quantity)
        await _record(ctx.conn, message, ReservationStatus.REJECTED, reason=reason)
        status = StockStatus.UNAVAILABLE
    answer_reserve(ctx, message, status, reason)


def answer_reserve(
    ctx: HandlerContext, message: ReserveProduct, status: StockStatus, reason: str | None
) -> None:
    """Send the answer to ``message``: ``status``, with ``reason`` for a refusal."""
    if reason is not None:
        log.info(
            "saga %s: product %d unavailable: %s", ctx.cause.saga_id, message.productID, reason
        )
    ctx.send(
        topics.PRODUCT_RESERVED,
        ProductReserved(
            orderID=message.orderID,
            userID=message.userID,
            productID=message.productID,
            quantity=message.quantity,
            status=status,
            reason=reason,
        ),
    )


async def handle_cancel_product_reservation(
    ctx: HandlerContext, message: CancelProductReservation
) -> None:
    """Put a held reservation's quantity back on hand, exactly once.

    A cancel for an order with no reservation leaves a tombstone, so a reserve that
    arrives later is refused. Anything else was never deducted or is already back:
    answered ``NOTHING_RESERVED`` with quantity 0.
    """
    order_id = str(message.orderID)
    await _lock_product(ctx.conn, message.productID)
    existing = await _find(ctx.conn, order_id)
    released = 0
    if existing is None:
        await _record(ctx.conn, message, ReservationStatus.CANCELLED, quantity=0)
    elif releases_stock(existing.status):
        released = await release(ctx.conn, order_id, existing.product_id, existing.quantity)
    answer_cancel(ctx, message, released)


def answer_cancel(ctx: HandlerContext, message: CancelProductReservation, released: int) -> None:
    """Send the answer to ``message``, a cancel that put ``released`` units back."""
    ctx.send(
        topics.PRODUCT_RESERVATION_CANCELLED,
        ProductReservationCancelled(
            orderID=message.orderID,
            productID=message.productID,
            quantity=released,
            status=cancel_answer(released),
        ),
    )


async def _lock_product(conn: AsyncConnection, product_id: int) -> None:
    # Serialises the commands touching one product; an unknown product has nothing to lock.
    await conn.execute(_LOCK_PRODUCT, {"wanted_product": product_id})


async def _find(conn: AsyncConnection, order_id: str) -> Reservation | None:
    row = (await conn.execute(_FIND, {"wanted_order": order_id})).one_or_none()
    if row is None:
        return None
    return Reservation(row.product_id, row.quantity, ReservationStatus(row.status), row.reason)


async def take(conn: AsyncConnection, product_id: int, quantity: int) -> bool:
    """Deduct ``quantity`` if that much is on hand, in one statement; True if it was."""
    result = await conn.execute(_TAKE, {"wanted_product": product_id, "wanted_quantity": quantity})
    return result.rowcount == 1


async def on_hand_of(conn: AsyncConnection, product_id: int) -> int | None:
    """The quantity on hand, for the reason of a refusal; None for an unknown product."""
    on_hand: int | None = await conn.scalar(_ON_HAND, {"wanted_product": product_id})
    return on_hand


async def release(conn: AsyncConnection, order_id: str, product_id: int, quantity: int) -> int:
    """Mark the reservation RELEASED and put its quantity back; the units released.

    The status change is guarded in its WHERE clause, so of two cancels racing for the
    same reservation only one gives the stock back.
    """
    result = await conn.execute(
        update(reservations)
        .where(
            reservations.c.order_id == order_id,
            reservations.c.status == ReservationStatus.RESERVED.value,
        )
        .values(status=ReservationStatus.RELEASED.value, updated_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        return 0
    return await give_back(conn, product_id, quantity)


async def give_back(conn: AsyncConnection, product_id: int, quantity: int) -> int:
    """Put ``quantity`` units of ``product_id`` back on hand; the units given back."""
    await conn.execute(_GIVE_BACK, {"wanted_product": product_id, "given_quantity": quantity})
    return quantity


async def _record(
    conn: AsyncConnection,
    message: ReserveProduct | CancelProductReservation,
    status: ReservationStatus,
    *,
    quantity: int | None = None,
    reason: str | None = None,
) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        _RECORD,
        {
            "order_id": str(message.orderID),
            "product_id": message.productID,
            "quantity": message.quantity if quantity is None else quantity,
            "status": status.value,
            "reason": reason,
            "created_at": now,
            "updated_at": now,
        },
    )
