"""Handling a polled batch of payment commands with a few statements.

The effect is that of the handlers applied to each command in turn, in one transaction.
The batch's users are locked in one statement (in the order of their ids, so two
batches wait for each other instead of deadlocking) and its orders' payments are read
in another; then each command is decided in record order against what is known in
memory, so a later command of an order sees what an earlier one did (a charge then its
cancel, a duplicate). Each charge still deducts with its own conditional update; the
new payment rows, tombstones included, go in with one insert at the end.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import CancelPayment, ProcessPayment
from ordersaga.contracts.statuses import PaymentStatus
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.services.payment.handlers import (
    ZERO,
    Payment,
    answer_cancel,
    answer_payment,
    balance_of,
    charge,
    give_back,
    refund,
)
from ordersaga.services.payment.rules import (
    ChargeStatus,
    answer_existing,
    refunds,
    rejection_reason,
)
from ordersaga.services.payment.tables import balances, payments

_LOCK_USERS = (
    select(balances.c.user_id)
    .where(balances.c.user_id.in_(bindparam("wanted_users", expanding=True)))
    .order_by(balances.c.user_id)
    .with_for_update()
)
_FIND_MANY = select(
    payments.c.order_id,
    payments.c.user_id,
    payments.c.amount,
    payments.c.status,
    payments.c.reason,
).where(payments.c.order_id.in_(bindparam("wanted_orders", expanding=True)))
_RECORD_MANY = insert(payments)

PaymentCommand = ProcessPayment | CancelPayment


@dataclass(slots=True)
class _Batch:
    """What the batch knows while it works: users, and payments stored or new."""

    conn: AsyncConnection
    users: set[int]
    stored: dict[str, Payment]
    new: dict[str, Payment] = field(default_factory=dict)

    def find(self, order_id: str) -> Payment | None:
        """The order's payment as the commands before this one left it."""
        return self.new.get(order_id) or self.stored.get(order_id)


async def handle_payment_batch(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
    """Handle process-payment and cancel-payment commands, as one by one in order."""
    commands: list[PaymentCommand] = [item.message for item in items]
    batch = _Batch(
        conn,
        await _lock_users(conn, sorted({c.userID for c in commands})),
        await _find_many(conn, sorted({str(c.orderID) for c in commands})),
    )
    for item, command in zip(items, commands, strict=True):
        if isinstance(command, ProcessPayment):
            await _charge(batch, item.context, command)
        else:
            await _cancel(batch, item.context, command)
    await _record_new(conn, batch.new)


async def _charge(batch: _Batch, ctx: HandlerContext, message: ProcessPayment) -> None:
    order_id, user_id, amount = str(message.orderID), message.userID, message.amount
    existing = batch.find(order_id)
    if existing is not None:
        status, reason = answer_existing(existing.status, existing.reason)
    elif user_id in batch.users and await charge(batch.conn, user_id, amount):
        batch.new[order_id] = Payment(user_id, amount, ChargeStatus.APPROVED, None)
        status, reason = PaymentStatus.PAYMENT_APPROVED, None
    else:
        # An unknown user has no balance to charge: nothing to try.
        balance = await balance_of(batch.conn, user_id) if user_id in batch.users else None
        reason = rejection_reason(user_id, balance, amount)
        batch.new[order_id] = Payment(user_id, amount, ChargeStatus.REJECTED, reason)
        status = PaymentStatus.PAYMENT_REJECTED
    answer_payment(ctx, message, status, reason)


async def _cancel(batch: _Batch, ctx: HandlerContext, message: CancelPayment) -> None:
    order_id = str(message.orderID)
    existing = batch.find(order_id)
    refunded: Decimal | None = None
    if existing is None:
        batch.new[order_id] = Payment(message.userID, ZERO, ChargeStatus.VOIDED, None)
    elif refunds(existing.status):
        gone = replace(existing, status=ChargeStatus.REFUNDED)
        if order_id in batch.new:
            # Charged earlier in this batch and not written yet: it is written refunded.
            refunded = await give_back(batch.conn, existing.user_id, existing.amount)
            batch.new[order_id] = gone
        else:
            refunded = await refund(batch.conn, order_id, existing.user_id, existing.amount)
            batch.stored[order_id] = gone
    answer_cancel(ctx, message, refunded)


async def _lock_users(conn: AsyncConnection, user_ids: Sequence[int]) -> set[int]:
    """Lock the balance rows of ``user_ids``; the ones that exist."""
    result = await conn.execute(_LOCK_USERS, {"wanted_users": user_ids})
    return set(result.scalars())


async def _find_many(conn: AsyncConnection, order_ids: Sequence[str]) -> dict[str, Payment]:
    result = await conn.execute(_FIND_MANY, {"wanted_orders": order_ids})
    return {
        row.order_id: Payment(row.user_id, row.amount, ChargeStatus(row.status), row.reason)
        for row in result
    }


async def _record_new(conn: AsyncConnection, new: dict[str, Payment]) -> None:
    # In the order of their keys, as the locks were taken.
    if not new:
        return
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "order_id": order_id,
            "user_id": p.user_id,
            "amount": p.amount,
            "status": p.status.value,
            "reason": p.reason,
            "created_at": now,
            "updated_at": now,
        }
        for order_id, p in sorted(new.items())
    ]
    await conn.execute(_RECORD_MANY, rows)
