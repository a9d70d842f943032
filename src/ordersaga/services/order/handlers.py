"""The order service's handler: an order's final status, as the saga decided it."""

import logging

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderStatusApplied, OrderUpdated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.handler import HandlerContext, one_by_one
from ordersaga.services.order import repository
from ordersaga.services.order.model import final_reason

log = logging.getLogger(__name__)


async def apply_order_update(ctx: HandlerContext, message: OrderUpdated) -> None:
    """Record the final status of an ORDER_CREATED order; a final status is never changed.

    Whenever the order ends up final, whether this update made it so or an earlier one
    did, the saga is told with an ``order-status-applied`` carrying the order's status:
    until then it sends the update again. An update to a status that is not final, or
    for an order this service does not know, changes nothing and is logged.
    """
    saga = ctx.cause.saga_id
    if not message.status.is_terminal:
        log.warning(
            "saga %s: ignored order-updated to %s, not a final status", saga, message.status
        )
        return
    reason = final_reason(message.status, message.reason)
    if await repository.finish_order(ctx.conn, message.orderID, message.status, reason, utc_now()):
        # DEBUG: the order row and the saga's history say it; at INFO, a line per order.
        log.debug("saga %s: order %s is %s", saga, message.orderID, message.status)
        _applied(ctx, message, message.status)
        return
    current = await repository.order_status(ctx.conn, message.orderID)
    if current is None:
        log.warning("saga %s: ignored order-updated for unknown order %s", saga, message.orderID)
        return
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


handle_order_updated = one_by_one(apply_order_update)
"""The handler of ``order-updated``: each update of a batch applied in turn."""


def _applied(ctx: HandlerContext, message: OrderUpdated, status: OrderStatus) -> None:
    ctx.send(
        topics.ORDER_STATUS_APPLIED, OrderStatusApplied(orderID=message.orderID, status=status)
    )
