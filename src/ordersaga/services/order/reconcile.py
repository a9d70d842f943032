"""Reconciliation: an order left ORDER_CREATED too long has its order-created published
again, so its saga finishes even if a message was lost (to the DLQ, by an operator).

The order-created goes through the outbox with a new message id. The orchestrator
starts a saga only once per order (its primary key), so for a saga that is under way
the second start changes nothing; for a saga whose outcome is decided it sends the
final order-updated again, which ends an order whose update was lost.

Each scan takes a small batch of the oldest such orders, locked and skipping those
another replica holds (SQLite has one writer), publishes them and sets their
``reconciled_at``, so an order is published again at most once per window, however
many replicas scan. ``updated_at`` is left alone: it says when the saga ended.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update

from ordersaga.contracts import topics
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.order.model import Order
from ordersaga.services.order.placing import order_created
from ordersaga.services.order.repository import order_from_row
from ordersaga.services.order.tables import orders

log = logging.getLogger(__name__)


async def reconcile_stale_orders(
    transactions: Transactions,
    *,
    after: float,
    now: datetime | None = None,
    batch: int = 50,
) -> int:
    """Publish order-created again for up to ``batch`` orders ORDER_CREATED for more
    than ``after`` seconds and not reconciled in that time; how many were."""
    at = now or utc_now()
    stale = at - timedelta(seconds=after)
    due = (
        orders.c.status == OrderStatus.ORDER_CREATED.value,
        orders.c.created_at <= stale,
        or_(orders.c.reconciled_at.is_(None), orders.c.reconciled_at <= stale),
    )
    query = (
        select(orders)
        .where(*due)
        .order_by(orders.c.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    claim = update(orders).where(orders.c.id == bindparam("wanted"), *due)
    async with transactions.begin() as work:
        conn = work.conn
        found: list[Order] = []
        for order in [order_from_row(row) for row in await conn.execute(query)]:
            # Still due when written: on SQLite, which has no row locks, another
            # replica may have claimed it since the read.
            claimed = await conn.execute(claim.values(reconciled_at=at), {"wanted": str(order.id)})
            if claimed.rowcount == 1:
                found.append(order)
        for order in found:
            work.send(topics.ORDER_CREATED, order_created(order))
    for order in found:
        log.warning(
            "saga %s: order still %s after %gs; order-created published again",
            order.id,
            order.status,
            after,
        )
    return len(found)


async def run_reconciler(
    transactions: Transactions,
    *,
    after: float,
    batch: int = 50,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Reconcile stale orders until cancelled, scanning a few times per window.

    A full batch is followed at once by another scan; a failed scan is retried with
    backoff, so the service stays up while its database is away.
    """
    interval = min(after / 4, 30.0)
    backoff = Backoff(first=interval, cap=max(interval, 5.0))
    while True:
        try:
            done = await reconcile_stale_orders(transactions, after=after, now=clock(), batch=batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciliation of stale orders failed; retrying")
            await backoff.sleep()
            continue
        backoff.reset()
        if done < batch:
            await asyncio.sleep(interval)
