"""The stock service as the runtime sees it: tables, its handler, subscriptions and sample data."""

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.config import SAMPLE_STOCK, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import CancelProductReservation, ReserveProduct
from ordersaga.db.retention import inbox_pruner
from ordersaga.messaging.handler import Subscription
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.services.base import ServiceSpec
from ordersaga.services.holdings import Holdings, holdings_handler
from ordersaga.services.stock import rules
from ordersaga.services.stock.tables import inbox, metadata, outbox, reservations, stock

handle_stock = holdings_handler(
    Holdings(
        stock.c.product_id,
        stock.c.quantity,
        reservations.c.product_id,
        reservations.c.quantity,
        rules,
    )
)
"""reserve-product (a hold of stock) and cancel-product-reservation (its release)."""


async def seed(conn: AsyncConnection) -> None:
    """Put the sample stock on hand if the stock table is empty; a no-op otherwise."""
    if await conn.scalar(select(func.count()).select_from(stock)):
        return
    await conn.execute(
        insert(stock),
        [
            {"product_id": product_id, "quantity": quantity, "initial_quantity": quantity}
            for product_id, quantity in SAMPLE_STOCK.items()
        ],
    )


def spec(settings: Settings, *, metrics: ServiceMetrics | None = None) -> ServiceSpec:
    """The stock service: answers reserve-product and cancel-product-reservation. Its
    figures are the runtime's (consumer, relay, outbox): ``metrics`` is not needed here."""
    return ServiceSpec(
        name="stock",
        metadata=metadata,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[
            # One handler for both, so a reserve and its cancel are handled in order.
            Subscription(topics.RESERVE_PRODUCT, ReserveProduct, handle_stock),
            Subscription(topics.CANCEL_PRODUCT_RESERVATION, CancelProductReservation, handle_stock),
        ],
        produces=[topics.PRODUCT_RESERVED, topics.PRODUCT_RESERVATION_CANCELLED],
        seed=seed,
        retention=[inbox_pruner(inbox, settings.inbox_window)],
        retention_interval=settings.retention_interval,
    )
