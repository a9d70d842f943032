"""Placing an order: the order row and its ``order-created`` message, in one unit of work.

An ``Idempotency-Key`` never changes meaning: the first request that uses it creates
the order, every later one with the same body gets that order back and creates nothing,
and one with a different body is refused. When two requests race with one key, the
unique constraint on ``orders.idempotency_key`` picks the winner; the loser reads the
winner's order once the winner has committed.
"""

import logging
from uuid import uuid4

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.envelope import Trace
from ordersaga.messaging.unit_of_work import Transactions, UnitOfWork
from ordersaga.observability.logs import log_context
from ordersaga.services.order import repository
from ordersaga.services.order.model import (
    IdempotencyKeyReused,
    Order,
    OrderRequest,
    Placement,
    UnknownProduct,
    order_amount,
)

log = logging.getLogger(__name__)


async def place_order(
    transactions: Transactions,
    request: OrderRequest,
    *,
    idempotency_key: str | None,
    traceparent: str | None = None,
) -> Placement:
    """Create the order ``request`` asks for, or return the one its idempotency key made.

    Its ``order-created`` carries ``traceparent`` (the request's span), so the saga is
    the request's trace; without one, the saga starts a trace of its own.

    Raises :class:`UnknownProduct` for a product not in the catalog and
    :class:`IdempotencyKeyReused` when the key was used for a different order.
    """
    engine = transactions.engine
    if idempotency_key is not None:
        replay = await _replay(engine, request, idempotency_key)
        if replay is not None:
            return replay
    try:
        async with transactions.begin() as work:
            order = await _create(work, request, idempotency_key, traceparent)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # Another request with this key committed between our look-up and our insert.
        replay = await _replay(engine, request, idempotency_key)
        if replay is None:
            raise
        return replay
    # DEBUG: one line per order at INFO costs a percent of the service's CPU at load;
    # the saga's outcome is logged where it ends.
    if log.isEnabledFor(logging.DEBUG):
        with log_context(saga_id=str(order.id), order_id=str(order.id)):
            log.debug("saga %s: order created for user %d", order.id, order.user_id)
    return Placement(order, created=True)


async def _replay(engine: AsyncEngine, request: OrderRequest, key: str) -> Placement | None:
    async with engine.connect() as conn:
        existing = await repository.order_by_idempotency_key(conn, key)
    if existing is None:
        return None
    if not existing.matches(request):
        raise IdempotencyKeyReused(key)
    return Placement(existing, created=False)


async def _create(
    work: UnitOfWork, request: OrderRequest, key: str | None, traceparent: str | None
) -> Order:
    conn = work.conn
    price = await repository.product_price(conn, request.product_id)
    if price is None:
        raise UnknownProduct(request.product_id, await repository.product_ids(conn))
    now = utc_now()
    order = Order(
        id=uuid4(),
        user_id=request.user_id,
        product_id=request.product_id,
        quantity=request.quantity,
        amount=order_amount(price, request.quantity),
        status=OrderStatus.ORDER_CREATED,
        reason=None,
        created_at=now,
        updated_at=now,
    )
    await repository.insert_order(conn, order, key)
    cause = Trace("", str(order.id), traceparent) if traceparent else None
    work.send(topics.ORDER_CREATED, order_created(order), cause)
    return order


def order_created(order: Order) -> OrderCreated:
    """The ``order-created`` message that starts the saga of ``order``."""
    return OrderCreated(
        orderID=order.id,
        userID=order.user_id,
        productID=order.product_id,
        quantity=order.quantity,
        amount=order.amount,
        status=OrderStatus.ORDER_CREATED,
    )
