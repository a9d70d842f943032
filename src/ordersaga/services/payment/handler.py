"""The payment service's handler: charging an order to its user, and refunding it.

Every change is a conditional update, never read-modify-write. One payment row per order
(its primary key) makes each effect happen at most once per order, whatever the number
of commands. The batch's users are locked first (see
:mod:`~ordersaga.services.participant`), so commands for one user, and so two for the
same order, queue instead of colliding.
"""

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, select, update
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
from ordersaga.services.participant import Known, Ledger, batch_handler
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

_AMOUNT = balances.c.balance.type
_CHARGE = (
    update(balances)
    .where(
        balances.c.user_id == bindparam("wanted_user"),
        balances.c.balance >= bindparam("wanted_amount", type_=_AMOUNT),
    )
    .values(balance=balances.c.balance - bindparam("wanted_amount", type_=_AMOUNT))
)
_BALANCE = select(balances.c.balance).where(balances.c.user_id == bindparam("wanted_user"))
_GIVE_BACK = (
    update(balances)
    .where(balances.c.user_id == bindparam("wanted_user"))
    .values(balance=balances.c.balance + bindparam("given_amount", type_=_AMOUNT))
)
# Guarded in its WHERE clause: of two cancels racing for one payment, one refunds.
_REFUND = (
    update(payments)
    .where(
        payments.c.order_id == bindparam("wanted_order"),
        payments.c.status == ChargeStatus.APPROVED.value,
    )
    .values(status=ChargeStatus.REFUNDED.value, updated_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class Payment:
    """An order's payment row, as the batch knows it."""

    user_id: int
    amount: Decimal
    status: ChargeStatus
    reason: str | None


Payments = Known[Payment]


async def charge(known: Payments, ctx: HandlerContext, message: ProcessPayment) -> None:
    """Charge the order's amount if the user's balance covers it; answer approved or rejected.

    An order that already has a payment row is answered from it and charges nothing.
    """
    order_id, user_id, amount = str(message.orderID), message.userID, message.amount
    existing = known.find(order_id)
    if existing is not None:
        status, reason = answer_existing(existing.status, existing.reason)
    elif user_id in known.holders and await _charge(known.conn, user_id, amount):
        known.put(order_id, Payment(user_id, amount, ChargeStatus.APPROVED, None))
        status, reason = PaymentStatus.PAYMENT_APPROVED, None
    else:
        # An unknown user has no balance to charge: nothing to try.
        balance = await _balance(known.conn, user_id) if user_id in known.holders else None
        reason = rejection_reason(user_id, balance, amount)
        known.put(order_id, Payment(user_id, amount, ChargeStatus.REJECTED, reason))
        status = PaymentStatus.PAYMENT_REJECTED
    if reason is not None:
        log.info("saga %s: payment rejected: %s", ctx.cause.saga_id, reason)
    ctx.send(
        topics.PAYMENT_PROCESSED,
        PaymentProcessed(
            orderID=message.orderID, userID=user_id, amount=amount, status=status, reason=reason
        ),
    )


async def cancel(known: Payments, ctx: HandlerContext, message: CancelPayment) -> None:
    """Refund an approved charge, exactly once.

    A cancel for an order with no payment leaves a tombstone, so a payment that arrives
    later is refused. Anything else was never charged or is already refunded: answered
    ``NOTHING_CHARGED`` with amount 0.
    """
    order_id = str(message.orderID)
    existing = known.find(order_id)
    refunded: Decimal | None = None
    if existing is None:
        known.put(order_id, Payment(message.userID, ZERO, ChargeStatus.VOIDED, None))
    elif refunds(existing.status):
        # Charged earlier in this batch: not written yet, so it is written refunded.
        if known.is_new(order_id) or await _refund(known.conn, order_id):
            refunded = await _give_back(known.conn, existing.user_id, existing.amount)
        known.put(order_id, replace(existing, status=ChargeStatus.REFUNDED))
    ctx.send(
        topics.PAYMENT_CANCELLED,
        PaymentCancelled(
            orderID=message.orderID,
            userID=message.userID,
            amount=ZERO if refunded is None else refunded,
            status=cancel_answer(refunded),
        ),
    )


async def _charge(conn: AsyncConnection, user_id: int, amount: Decimal) -> bool:
    """Deduct ``amount`` if the balance covers it, in one statement; True if it did."""
    result = await conn.execute(_CHARGE, {"wanted_user": user_id, "wanted_amount": amount})
    return result.rowcount == 1


async def _balance(conn: AsyncConnection, user_id: int) -> Decimal | None:
    balance: Decimal | None = await conn.scalar(_BALANCE, {"wanted_user": user_id})
    return balance


async def _refund(conn: AsyncConnection, order_id: str) -> bool:
    """Mark the stored payment REFUNDED; False if another cancel did first."""
    result = await conn.execute(_REFUND, {"wanted_order": order_id, "now": datetime.now(UTC)})
    return result.rowcount == 1


async def _give_back(conn: AsyncConnection, user_id: int, amount: Decimal) -> Decimal:
    await conn.execute(_GIVE_BACK, {"wanted_user": user_id, "given_amount": amount})
    return amount


def _read(row: Row[Any]) -> Payment:
    return Payment(row.user_id, row.amount, ChargeStatus(row.status), row.reason)


def _write(p: Payment) -> dict[str, Any]:
    return {"user_id": p.user_id, "amount": p.amount, "status": p.status.value, "reason": p.reason}


handle_payment = batch_handler(
    Ledger(
        holder=balances.c.user_id,
        records=payments,
        holder_of=lambda command: command.userID,
        read=_read,
        write=_write,
        rules={ProcessPayment: charge, CancelPayment: cancel},
    )
)
"""process-payment and cancel-payment, handled as one by one in order."""
