"""What the order service hands to the wiring: tables, its subscription, its seed and
the reconciliation of stale orders."""

from functools import partial

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.config import SAMPLE_PRICES, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderUpdated
from ordersaga.db.retention import inbox_pruner
from ordersaga.messaging.handler import Subscription
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.services.base import ServiceSpec
from ordersaga.services.order import tables
from ordersaga.services.order.handlers import handle_order_updated
from ordersaga.services.order.reconcile import run_reconciler


async def seed(conn: AsyncConnection) -> None:
    """Fill an empty catalog with the sample products; leave a catalog with products alone."""
    count = await conn.scalar(select(func.count()).select_from(tables.products))
    if count:
        return
    await conn.execute(
        insert(tables.products),
        [{"id": pid, "name": name, "price": price} for pid, (name, price) in SAMPLE_PRICES.items()],
    )


def spec(settings: Settings, *, metrics: ServiceMetrics | None = None) -> ServiceSpec:
    """The order service: consumes ``order-updated`` and reconciles orders left
    ORDER_CREATED; the HTTP API is built by ``api``. Its figures are the runtime's
    (consumer, relay, outbox, API): ``metrics`` is not needed here."""
    reconciler = partial(run_reconciler, after=settings.reconcile_after)
    return ServiceSpec(
        name="order",
        metadata=tables.metadata,
        inbox=tables.inbox,
        outbox=tables.outbox,
        subscriptions=[Subscription(topics.ORDER_UPDATED, OrderUpdated, handle_order_updated)],
        # Orders placed and reconciled; acknowledgements of order-updated.
        produces=[topics.ORDER_CREATED, topics.ORDER_STATUS_APPLIED],
        seed=seed,
        retention=[inbox_pruner(tables.inbox, settings.inbox_window)],
        retention_interval=settings.retention_interval,
        background=[reconciler],
    )
