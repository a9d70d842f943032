"""Placing orders: the order rows and their ``order-created`` messages, in one unit of work.

An ``Idempotency-Key`` never changes meaning: the first request that uses it creates
the order, every later one with the same body gets that order back and creates nothing,
and one with a different body is refused. When two requests race with one key, the
unique constraint on ``orders.idempotency_key`` picks the winner; the loser reads the
winner's order once the winner has committed. Two asks with one key in one batch are
settled in memory the same way: the first creates, the second gets its order.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import uuid4

from sqlalchemy.exc import IntegrityError

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.envelope import Trace
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.logs import log_context
from ordersaga.services.order import repository
from ordersaga.services.order.catalog import CatalogCache
from ordersaga.services.order.model import (
    IdempotencyKeyReused,
    Order,
    OrderRejected,
    OrderRequest,
    Placement,
    UnknownProduct,
    order_amount,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ask:
    """One request to place an order: what it asks for, its idempotency key, and the
    ``traceparent`` its ``order-created`` carries (the request's span), if any."""

    request: OrderRequest
    idempotency_key: str | None = None
    traceparent: str | None = None


Outcome = Placement | OrderRejected
"""What placing one ask came to: its order, or why it was refused."""


async def place_orders(
    transactions: Transactions, catalog: CatalogCache, asks: Sequence[Ask]
) -> list[Outcome]:
    """Place ``asks`` in one unit of work: one read of the keys they carry, one insert of
    the new orders, one of their ``order-created`` messages. Their outcomes, in order.

    An ask refused (:class:`UnknownProduct`, :class:`IdempotencyKeyReused`) refuses
    nothing else. Raises what the database raises; an :class:`IntegrityError` is a key
    another transaction committed meanwhile, which :func:`place_order` settles.
    """
    prices = await catalog.prices({ask.request.product_id for ask in asks})
    keys = sorted({ask.idempotency_key for ask in asks if ask.idempotency_key is not None})
    async with transactions.begin() as work:
        known = await repository.orders_by_idempotency_keys(work.conn, keys)
        outcomes = [_outcome(ask, known, prices) for ask in asks]
        created = [
            (outcome.order, ask)
            for outcome, ask in zip(outcomes, asks, strict=True)
            if isinstance(outcome, Placement) and outcome.created
        ]
        await repository.insert_orders(work.conn, [(o, a.idempotency_key) for o, a in created])
        for order, ask in created:
            cause = Trace("", str(order.id), ask.traceparent) if ask.traceparent else None
            work.send(topics.ORDER_CREATED, order_created(order), cause)
    # DEBUG: one line per order at INFO costs a percent of the service's CPU at load;
    # the saga's outcome is logged where it ends.
    if log.isEnabledFor(logging.DEBUG):
        for order, _ in created:
            with log_context(saga_id=str(order.id), order_id=str(order.id)):
                log.debug("saga %s: order created for user %d", order.id, order.user_id)
    return outcomes


async def place_order(
    transactions: Transactions,
    request: OrderRequest,
    *,
    idempotency_key: str | None,
    traceparent: str | None = None,
    catalog: CatalogCache | None = None,
) -> Placement:
    """Create the order ``request`` asks for, or return the one its idempotency key made.

    Its ``order-created`` carries ``traceparent`` (the request's span), so the saga is
    the request's trace; without one, the saga starts a trace of its own.

    Raises :class:`UnknownProduct` for a product not in the catalog and
    :class:`IdempotencyKeyReused` when the key was used for a different order.
    """
    catalog = catalog or CatalogCache(transactions.engine)
    ask = Ask(request, idempotency_key, traceparent)
    try:
        [outcome] = await place_orders(transactions, catalog, [ask])
    except IntegrityError:
        if idempotency_key is None:
            raise
        # Another request with this key committed between our look-up and our insert:
        # looked up again, it is that request's order.
        [outcome] = await place_orders(transactions, catalog, [ask])
    if isinstance(outcome, OrderRejected):
        raise outcome
    return outcome


def _outcome(ask: Ask, known: dict[str, Order], prices: Mapping[int, Decimal]) -> Outcome:
    """``ask``'s outcome given the orders ``known`` by key (those of earlier asks of the
    batch included: a new order is added) and the catalog's ``prices``."""
    key, request = ask.idempotency_key, ask.request
    if key is not None and key in known:
        if not known[key].matches(request):
            return IdempotencyKeyReused(key)
        return Placement(known[key], created=False)
    price = prices.get(request.product_id)
    if price is None:
        return UnknownProduct(request.product_id, sorted(prices))
    order = _new_order(request, price)
    if key is not None:
        known[key] = order
    return Placement(order, created=True)


def _new_order(request: OrderRequest, price: Decimal) -> Order:
    now = utc_now()
    return Order(
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
