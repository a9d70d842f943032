"""Handlers of the payment service: charging an order to its user, and refunding it.

Every change is a conditional update, never read-modify-write. One payment row per order
(its primary key) makes each effect happen at most once per order, whatever the number
of commands. Each handler first locks the user's balance row, so commands for one
user, and so two for the same order, queue instead of colliding. Where no lock is taken
(SQLite, an unknown user) the primary key still decides: the loser is rolled back,
charge included, and answers from the winner's row when retried.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelPayment,
    PaymentCancelled,
    PaymentProcessed,
    ProcessPayment,
)
from ordersaga.contracts.statuses import PaymentStatus
from ordersaga.messaging.handler import HandlerContext
from ordersaga.services.payment.rules import (
    ChargeStatus,
    answer_existing,
    cancel_answer,
    refunds,
    rejection_reason,
)
from ordersaga.services.payment.tables import balances, payments

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")

# Built once and run with bound parameters: building a statement costs more than running it.
_LOCK_USER = (
    select(balances.c.user_id)
    .where(balances.c.user_id == bindparam("wanted_user"))
    .with_for_update()
)
_FIND = select(payments.c.user_id, payments.c.amount, payments.c.status, payments.c.reason).where(
    payments.c.order_id == bindparam("wanted_order")
)
_CHARGE = (
    update(balances)
    .where(
        balances.c.user_id == bindparam("wanted_user"),
        balances.c.balance >= bindparam("wanted_amount", type_=balances.c.balance.type),
    )
    .values(balance=balances.c.balance - bindparam("wanted_amount", type_=balances.c.balance.type))
)
_BALANCE = select(balances.c.balance).where(balances.c.user_id == bindparam("wanted_user"))
_GIVE_BACK = (
    update(balances)
    .where(balances.c.user_id == bindparam("wanted_user"))
    .values(balance=balances.c.balance + bindparam("given_amount", type_=balances.c.balance.type))
)
_RECORD = insert(payments)


@dataclass(frozen=True, slots=True)
class Payment:
    """An order's payment row, as read in the handler's transaction."""

    user_id: int
    amount: Decimal
    status: ChargeStatus
    reason: str | None


async def handle_process_payment(ctx: HandlerContext, message: ProcessPayment) -> None:
    """Charge the order's amount if the user's balance covers it; answer approved or rejected.

    An order that already has a payment row is answered from it and charges nothing.
    """
    await _lock_user(ctx.conn, message.userID)
    existing = await _find(ctx.conn, str(message.orderID))
    if existing is not None:
        status, reason = answer_existing(existing.status, existing.reason)
    elif await charge(ctx.conn, message.userID, message.amount):
        await _record(ctx.conn, message, ChargeStatus.APPROVED)
        status, reason = PaymentStatus.PAYMENT_APPROVED, None
    else:
        balance = await balance_of(ctx.conn, message.userID)
        reason = rejection_reason(message.userID, balance, message.amount)
        await _record(ctx.conn, message, ChargeStatus.REJECTED, reason=reason)
        status = PaymentStatus.PAYMENT_REJECTED
    answer_payment(ctx, message, status, reason)


def answer_payment(
    ctx: HandlerContext, message: ProcessPayment, status: PaymentStatus, reason: str | None
) -> None:
    """Send the answer to ``message``: ``status``, with ``reason`` for a rejection."""
    if reason is not None:
        log.info("saga %s: payment rejected: %s", ctx.cause.saga_id, reason)
    ctx.send(
        topics.PAYMENT_PROCESSED,
        PaymentProcessed(
            orderID=message.orderID,
            userID=message.userID,
            amount=message.amount,
            status=status,
            reason=reason,
        ),
    )


async def handle_cancel_payment(ctx: HandlerContext, message: CancelPayment) -> None:
    """Refund an approved charge, exactly once.

    A cancel for an order with no payment leaves a tombstone, so a payment that arrives
    later is refused. Anything else was never charged or is already refunded: answered
    ``NOTHING_CHARGED`` with amount 0.
    """
    order_id = str(message.orderID)
    await _lock_user(ctx.conn, message.userID)
    existing = await _find(ctx.conn, order_id)
    refunded: Decimal | None = None
    if existing is None:
        await _record(ctx.conn, message, ChargeStatus.VOIDED, amount=ZERO)
    elif refunds(existing.status):
        refunded = await refund(ctx.conn, order_id, existing.user_id, existing.amount)
    answer_cancel(ctx, message, refunded)


def answer_cancel(ctx: HandlerContext, message: CancelPayment, refunded: Decimal | None) -> None:
    """Send the answer to ``message``, a cancel that refunded ``refunded`` (None: nothing)."""
    ctx.send(
        topics.PAYMENT_CANCELLED,
        PaymentCancelled(
            orderID=message.orderID,
            userID=message.userID,
            amount=ZERO if refunded is None else refunded,
            status=cancel_answer(refunded),
        ),
    )


async def _lock_user(conn: AsyncConnection, user_id: int) -> None:
    # Serialises the commands touching one balance; an unknown user has nothing to lock.
    await conn.execute(_LOCK_USER, {"wanted_user": user_id})


async def _find(conn: AsyncConnection, order_id: str) -> Payment | None:
    row = (await conn.execute(_FIND, {"wanted_order": order_id})).one_or_none()
    if row is None:
        return None
    return Payment(row.user_id, row.amount, ChargeStatus(row.status), row.reason)


async def charge(conn: AsyncConnection, user_id: int, amount: Decimal) -> bool:
    """Deduct ``amount`` if the balance covers it, in one statement; True if it did."""
    result = await conn.execute(_CHARGE, {"wanted_user": user_id, "wanted_amount": amount})
    return result.rowcount == 1


async def balance_of(conn: AsyncConnection, user_id: int) -> Decimal | None:
    """The balance, for the reason of a refusal; None for an unknown user."""
    balance: Decimal | None = await conn.scalar(_BALANCE, {"wanted_user": user_id})
    return balance


async def refund(
    conn: AsyncConnection, order_id: str, user_id: int, amount: Decimal
) -> Decimal | None:
    """Mark the payment REFUNDED and give its amount back; the amount, or None if raced.

    The status change is guarded in its WHERE clause, so of two cancels racing for the
    same payment only one refunds.
    """
    result = await conn.execute(
        update(payments)
        .where(
            payments.c.order_id == order_id,
            payments.c.status == ChargeStatus.APPROVED.value,
        )
        .values(status=ChargeStatus.REFUNDED.value, updated_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        return None
    return await give_back(conn, user_id, amount)


async def give_back(conn: AsyncConnection, user_id: int, amount: Decimal) -> Decimal:
    """Add ``amount`` back to the balance of ``user_id``; the amount given back."""
    await conn.execute(_GIVE_BACK, {"wanted_user": user_id, "given_amount": amount})
    return amount


async def _record(
    conn: AsyncConnection,
    message: ProcessPayment | CancelPayment,
    status: ChargeStatus,
    *,
    amount: Decimal | None = None,
    reason: str | None = None,
) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        _RECORD,
        {
            "order_id": str(message.orderID),
            "user_id": message.userID,
            "amount": message.amount if amount is None else amount,
            "status": status.value,
            "reason": reason,
            "created_at": now,
            "updated_at": now,
        },
    )
