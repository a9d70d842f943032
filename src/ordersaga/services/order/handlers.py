"""The order service's handler: orders' final statuses, as the sagas decided them.

A batch of ``order-updated`` is applied with a statement count that does not grow with
the batch: the batch's orders are read (and locked, where the database can) in one
statement, each update is decided in record order against what is known in memory (so
a second update of one order sees what the first did), and the orders that end are
written with one conditional update per final status and reason. Applied one by one,
an order service under HTTP load paid a round trip, and a turn of a busy event loop,
per update: its consumer fell behind and caught up in bursts.
"""

import logging
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderStatusApplied, OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.services.order import repository
from ordersaga.services.order.model import final_reason

log = logging.getLogger(__name__)


async def handle_order_updated(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
    """Record the final status of each ORDER_CREATED order; a final status is never changed.

    Whenever an order ends up final, whether this update made it so or an earlier one
    did, the saga is told with an ``order-status-applied`` carrying the order's status:
    until then it sends the update again. An update to a status that is not final, or
    for an order this service does not know, changes nothing and is logged.
    """
    wanted = sorted({str(item.message.orderID) for item in items})
    known = await repository.lock_statuses(conn, wanted)
    finishing: dict[UUID, tuple[OrderStatus, str | None]] = {}
    for item in items:
        with item.context.logged():
            decided = _decide(item.context, item.message, known.get(str(item.message.orderID)))
        if decided is not None:
            known[str(item.message.orderID)] = decided[0]
            finishing[item.message.orderID] = decided
    if finishing and await repository.finish_orders(conn, finishing, utc_now()) != len(finishing):
        # Only where rows are not locked: another writer finished one of them since the
        # read. Rolled back and retried, the batch then sees what that writer did.
        raise OrdersChanged(f"{len(finishing)} orders to finish changed since read; retrying")


class OrdersChanged(RuntimeError):
    """An order of the batch was finished by another transaction while it was handled."""


def _decide(
    ctx: HandlerContext, message: OrderUpdated, current: OrderStatus | None
) -> tuple[OrderStatus, str | None] | None:
    """What one update does to an order now ``current``: the final status and reason it
    gets, or ``None`` when it keeps the one it has."""
    saga = ctx.cause.saga_id
    if not message.status.is_terminal:
        log.warning(
            "saga %s: ignored order-updated to %s, not a final status", saga, message.status
        )
        return None
    if current is None:
        log.warning("saga %s: ignored order-updated for unknown order %s", saga, message.orderID)
        return None
    if current is OrderStatus.ORDER_CREATED:
        # DEBUG: the order row and the saga's history say it; at INFO, a line per order.
        log.debug("saga %s: order %s is %s", saga, message.orderID, message.status)
        _applied(ctx, message, message.status)
        return message.status, final_reason(message.status, message.reason)
    if current.is_terminal:
        _applied(ctx, message, current)
    log.log(
        logging.DEBUG if current is message.status else logging.WARNING,
        "saga %s: order-updated to %s; order %s is already %s",
        saga,
        message.status,
        message.orderID,
        current,
    )
    return None


def _applied(ctx: HandlerContext, message: OrderUpdated, status: OrderStatus) -> None:
    ctx.send(
        topics.ORDER_STATUS_APPLIED, OrderStatusApplied(orderID=message.orderID, status=status)
    )
