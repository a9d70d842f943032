"""The payment service as the runtime sees it: tables, subscriptions and sample data."""

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.config import SAMPLE_BALANCES, Settings
from ordersaga.contracts import topics
from ordersaga.db.retention import inbox_pruner
from ordersaga.messaging.handler import Subscription
from ordersaga.services.base import ServiceSpec
from ordersaga.services.payment.batch import handle_payment_batch
from ordersaga.services.payment.handlers import handle_cancel_payment, handle_process_payment
from ordersaga.services.payment.tables import balances, inbox, metadata, outbox


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


def spec(settings: Settings) -> ServiceSpec:
    """The payment service: answers process-payment and cancel-payment."""
    return ServiceSpec(
        name="payment",
        metadata=metadata,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[
            # One batch handler for both, so a payment and its cancel are handled in order.
            Subscription(topics.PROCESS_PAYMENT, handle_process_payment, handle_payment_batch),
            Subscription(topics.CANCEL_PAYMENT, handle_cancel_payment, handle_payment_batch),
        ],
        seed=seed,
        retention=[inbox_pruner(inbox, settings.inbox_window)],
        retention_interval=settings.retention_interval,
    )
