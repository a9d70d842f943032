"""The stock service's handler: reserving stock for an order, and giving it back.

Every change is a conditional update, never read-modify-write. One reservation row per
order (its primary key) makes each effect happen at most once per order, whatever the
number of commands. The batch's products are locked first (see
:mod:`~ordersaga.services.participant`), so commands for one product, and so two for
the same order, queue instead of colliding.
"""

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
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
from ordersaga.services.participant import Known, Ledger, batch_handler
from ordersaga.services.stock.rules import (
    ReservationStatus,
    answer_existing,
    cancel_answer,
    rejection_reason,
    releases_stock,
)
from ordersaga.services.stock.tables import reservations, stock

log = logging.getLogger(__name__)

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
# Guarded in its WHERE clause: of two cancels racing for one reservation, one releases.
_RELEASE = (
    update(reservations)
    .where(
        reservations.c.order_id == bindparam("wanted_order"),
        reservations.c.status == ReservationStatus.RESERVED.value,
    )
    .values(status=ReservationStatus.RELEASED.value, updated_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class Reservation:
    """An order's reservation row, as the batch knows it."""

    product_id: int
    quantity: int
    status: ReservationStatus
    reason: str | None


Reservations = Known[Reservation]


async def reserve(known: Reservations, ctx: HandlerContext, message: ReserveProduct) -> None:
    """Deduct the order's quantity if it is on hand, and answer AVAILABLE or UNAVAILABLE.

    An order that already has a reservation row is answered from it and deducts nothing.
    """
    order_id, product_id, quantity = str(message.orderID), message.productID, message.quantity
    existing = known.find(order_id)
    if existing is not None:
        status, reason = answer_existing(existing.status, existing.reason)
    elif product_id in known.holders and await _take(known.conn, product_id, quantity):
        known.put(order_id, Reservation(product_id, quantity, ReservationStatus.RESERVED, None))
        status, reason = StockStatus.AVAILABLE, None
    else:
        # An unknown product has no row to deduct from: nothing to try.
        on_hand = await _on_hand(known.conn, product_id) if product_id in known.holders else None
        reason = rejection_reason(product_id, on_hand, quantity)
        known.put(order_id, Reservation(product_id, quantity, ReservationStatus.REJECTED, reason))
        status = StockStatus.UNAVAILABLE
    if reason is not None:
        log.info("saga %s: product %d unavailable: %s", ctx.cause.saga_id, product_id, reason)
    ctx.send(
        topics.PRODUCT_RESERVED,
        ProductReserved(
            orderID=message.orderID,
            userID=message.userID,
            productID=product_id,
            quantity=quantity,
            status=status,
            reason=reason,
        ),
    )


async def cancel(
    known: Reservations, ctx: HandlerContext, message: CancelProductReservation
) -> None:
    """Put a held reservation's quantity back on hand, exactly once.

    A cancel for an order with no reservation leaves a tombstone, so a reserve that
    arrives later is refused. Anything else was never deducted or is already back:
    answered ``NOTHING_RESERVED`` with quantity 0.
    """
    order_id = str(message.orderID)
    existing = known.find(order_id)
    released = 0
    if existing is None:
        known.put(order_id, Reservation(message.productID, 0, ReservationStatus.CANCELLED, None))
    elif releases_stock(existing.status):
        # Reserved earlier in this batch: not written yet, so it is written released.
        if known.is_new(order_id) or await _release(known.conn, order_id):
            released = await _give_back(known.conn, existing.product_id, existing.quantity)
        known.put(order_id, replace(existing, status=ReservationStatus.RELEASED))
    ctx.send(
        topics.PRODUCT_RESERVATION_CANCELLED,
        ProductReservationCancelled(
            orderID=message.orderID,
            productID=message.productID,
            quantity=released,
            status=cancel_answer(released),
        ),
    )


async def _take(conn: AsyncConnection, product_id: int, quantity: int) -> bool:
    """Deduct ``quantity`` if that much is on hand, in one statement; True if it was."""
    result = await conn.execute(_TAKE, {"wanted_product": product_id, "wanted_quantity": quantity})
    return result.rowcount == 1


async def _on_hand(conn: AsyncConnection, product_id: int) -> int | None:
    on_hand: int | None = await conn.scalar(_ON_HAND, {"wanted_product": product_id})
    return on_hand


async def _release(conn: AsyncConnection, order_id: str) -> bool:
    """Mark the stored reservation RELEASED; False if another cancel did first."""
    result = await conn.execute(_RELEASE, {"wanted_order": order_id, "now": datetime.now(UTC)})
    return result.rowcount == 1


async def _give_back(conn: AsyncConnection, product_id: int, quantity: int) -> int:
    await conn.execute(_GIVE_BACK, {"wanted_product": product_id, "given_quantity": quantity})
    return quantity


def _read(row: Row[Any]) -> Reservation:
    return Reservation(row.product_id, row.quantity, ReservationStatus(row.status), row.reason)


def _write(r: Reservation) -> dict[str, Any]:
    return {
        "product_id": r.product_id,
        "quantity": r.quantity,
        "status": r.status.value,
        "reason": r.reason,
    }


handle_stock = batch_handler(
    Ledger(
        holder=stock.c.product_id,
        records=reservations,
        holder_of=lambda command: command.productID,
        read=_read,
        write=_write,
        rules={ReserveProduct: reserve, CancelProductReservation: cancel},
    )
)
"""reserve-product and cancel-product-reservation, handled as one by one in order."""
