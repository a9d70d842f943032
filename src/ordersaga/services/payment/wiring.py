"""The payment service as the runtime sees it: tables, its handler, subscriptions and sample
data."""

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.config import SAMPLE_BALANCES, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import CancelPayment, ProcessPayment
from ordersaga.db.retention import inbox_pruner
from ordersaga.messaging.handler import Subscription
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.services.base import ServiceSpec
from ordersaga.services.holdings import Holdings, holdings_handler
from ordersaga.services.payment import rules
from ordersaga.services.payment.tables import balances, inbox, metadata, outbox, payments

handle_payment = holdings_handler(
    Holdings(balances.c.user_id, balances.c.balance, payments.c.user_id, payments.c.amount, rules)
)
"""process-payment (a hold of money) and cancel-payment (its refund)."""


async def seed(conn: AsyncConnection) -> None:
    """Put the sample balances in if the balances table is empty; a no-op otherwise."""
    if await conn.scalar(select(func.count()).select_from(balances)):
        return
    await conn.execute(
        insert(balances),
        [
            {"user_id": user_id, "balance": balance, "initial_balance": balance}
            for user_id, balance in SAMPLE_BALANCES.items()
        ],
    )


def spec(settings: Settings, *, metrics: ServiceMetrics | None = None) -> ServiceSpec:
    """The payment service: answers process-payment and cancel-payment. Its figures are
    the runtime's (consumer, relay, outbox): ``metrics`` is not needed here."""
    return ServiceSpec(
        name="payment",
        metadata=metadata,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[
            # One handler for both, so a payment and its cancel are handled in order.
            Subscription(topics.PROCESS_PAYMENT, ProcessPayment, handle_payment),
            Subscription(topics.CANCEL_PAYMENT, CancelPayment, handle_payment),
        ],
        produces=[topics.PAYMENT_PROCESSED, topics.PAYMENT_CANCELLED],
        seed=seed,
        retention=[inbox_pruner(inbox, settings.inbox_window)],
        retention_interval=settings.retention_interval,
    )
