"""Handling a polled batch of stock commands with a few statements.

The effect is that of the handlers applied to each command in turn, in one transaction.
The batch's products are locked in one statement (in the order of their ids, so two
batches wait for each other instead of deadlocking) and its orders' reservations are
read in another; then each command is decided in record order against what is known in
memory, so a later command of an order sees what an earlier one did (a reserve then its
cancel, a duplicate). Each reservation still deducts with its own conditional update;
the new reservation rows, tombstones included, go in with one insert at the end.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import CancelProductReservation, ReserveProduct
from ordersaga.contracts.statuses import StockStatus
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.services.stock.handlers import (
    Reservation,
    answer_cancel,
    answer_reserve,
    give_back,
    on_hand_of,
    release,
    take,
)
from ordersaga.services.stock.rules import (
    ReservationStatus,
    answer_existing,
    rejection_reason,
    releases_stock,
)
from ordersaga.services.stock.tables import reservations, stock

_LOCK_PRODUCTS = (
    select(stock.c.product_id)
    .where(stock.c.product_id.in_(bindparam("wanted_products", expanding=True)))
    .order_by(stock.c.product_id)
    .with_for_update()
)
_FIND_MANY = select(
    reservations.c.order_id,
    reservations.c.product_id,
    reservations.c.quantity,
    reservations.c.status,
    reservations.c.reason,
).where(reservations.c.order_id.in_(bindparam("wanted_orders", expanding=True)))
_RECORD_MANY = insert(reservations)

StockCommand = ReserveProduct | CancelProductReservation


@dataclass(slots=True)
class _Batch:
    """What the batch knows while it works: products, and reservations stored or new."""

    conn: AsyncConnection
    products: set[int]
    stored: dict[str, Reservation]
    new: dict[str, Reservation] = field(default_factory=dict)

    def find(self, order_id: str) -> Reservation | None:
        """The order's reservation as the commands before this one left it."""
        return self.new.get(order_id) or self.stored.get(order_id)


async def handle_stock_batch(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
    """Handle reserve-product and cancel-product-reservation commands, as one by one in order."""
    commands: list[StockCommand] = [item.message for item in items]
    batch = _Batch(
        conn,
        await _lock_products(conn, sorted({c.productID for c in commands})),
        await _find_many(conn, sorted({str(c.orderID) for c in commands})),
    )
    for item, command in zip(items, commands, strict=True):
        if isinstance(command, ReserveProduct):
            await _reserve(batch, item.context, command)
        else:
            await _cancel(batch, item.context, command)
    await _record_new(conn, batch.new)


async def _reserve(batch: _Batch, ctx: HandlerContext, message: ReserveProduct) -> None:
    order_id, product_id, quantity = str(message.orderID), message.productID, message.quantity
    existing = batch.find(order_id)
    if existing is not None:
        status, reason = answer_existing(existing.status, existing.reason)
    elif product_id in batch.products and await take(batch.conn, product_id, quantity):
        batch.new[order_id] = Reservation(product_id, quantity, ReservationStatus.RESERVED, None)
        status, reason = StockStatus.AVAILABLE, None
    else:
        # An unknown product has no row to deduct from: nothing to try.
        known = product_id in batch.products
        on_hand = await on_hand_of(batch.conn, product_id) if known else None
        reason = rejection_reason(product_id, on_hand, quantity)
        batch.new[order_id] = Reservation(product_id, quantity, ReservationStatus.REJECTED, reason)
        status = StockStatus.UNAVAILABLE
    answer_reserve(ctx, message, status, reason)


async def _cancel(batch: _Batch, ctx: HandlerContext, message: CancelProductReservation) -> None:
    order_id = str(message.orderID)
    existing = batch.find(order_id)
    released = 0
    if existing is None:
        batch.new[order_id] = Reservation(message.productID, 0, ReservationStatus.CANCELLED, None)
    elif releases_stock(existing.status):
        gone = replace(existing, status=ReservationStatus.RELEASED)
        if order_id in batch.new:
            # Reserved earlier in this batch and not written yet: it is written released.
            released = await give_back(batch.conn, existing.product_id, existing.quantity)
            batch.new[order_id] = gone
        else:
            released = await release(batch.conn, order_id, existing.product_id, existing.quantity)
            batch.stored[order_id] = gone
    answer_cancel(ctx, message, released)


async def _lock_products(conn: AsyncConnection, product_ids: Sequence[int]) -> set[int]:
    """Lock the stock rows of ``product_ids``; the ones that exist."""
    result = await conn.execute(_LOCK_PRODUCTS, {"wanted_products": product_ids})
    return set(result.scalars())


async def _find_many(conn: AsyncConnection, order_ids: Sequence[str]) -> dict[str, Reservation]:
    result = await conn.execute(_FIND_MANY, {"wanted_orders": order_ids})
    return {
        row.order_id: Reservation(
            row.product_id, row.quantity, ReservationStatus(row.status), row.reason
        )
        for row in result
    }


async def _record_new(conn: AsyncConnection, new: dict[str, Reservation]) -> None:
    # In the order of their keys, as the locks were taken.
    if not new:
        return
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "order_id": order_id,
            "product_id": r.product_id,
            "quantity": r.quantity,
            "status": r.status.value,
            "reason": r.reason,
            "created_at": now,
            "updated_at": now,
        }
        for order_id, r in sorted(new.items())
    ]
    await conn.execute(_RECORD_MANY, rows)
