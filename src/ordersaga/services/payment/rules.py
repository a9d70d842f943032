"""Payment rules: what a payment's state means for the answers payment gives.

Pure functions, no I/O: the handler (:mod:`~ordersaga.services.holdings`) decides with
these and the database enforces.
"""

from decimal import Decimal
from enum import StrEnum

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelPayment,
    PaymentCancelled,
    PaymentProcessed,
    ProcessPayment,
)
from ordersaga.contracts.statuses import PaymentCancelStatus, PaymentStatus
from ordersaga.services.holdings import Statuses

ZERO = Decimal("0.00")


class ChargeStatus(StrEnum):
    """The state of a row in ``payments``: one row per order, never deleted.

    Declared in the order of :class:`~ordersaga.services.holdings.Statuses`."""

    APPROVED = "APPROVED"
    """The order's amount was charged to the user's balance."""
    REJECTED = "REJECTED"
    """The user could not pay (too little balance, or no such user)."""
    REFUNDED = "REFUNDED"
    """The charge was compensated: its amount went back to the balance."""
    VOIDED = "VOIDED"
    """Tombstone: the cancel arrived before any payment, so a later payment is refused."""


PAYMENT_CANCELLED = "payment was cancelled"


def answer_existing(status: ChargeStatus, reason: str | None) -> tuple[PaymentStatus, str | None]:
    """The answer to a process-payment for an order that already has a payment row.

    A command delivered again (or sent again after a timeout) is answered as the first
    one was; a payment that follows its own cancel is refused, so nothing is charged
    for a saga that has already given up on it.
    """
    if status is ChargeStatus.APPROVED:
        return PaymentStatus.PAYMENT_APPROVED, None
    if status is ChargeStatus.REJECTED:
        return PaymentStatus.PAYMENT_REJECTED, reason
    return PaymentStatus.PAYMENT_REJECTED, PAYMENT_CANCELLED


def rejection_reason(user_id: int, balance: Decimal | None, amount: Decimal) -> str:
    """Why a charge of ``amount`` failed; ``balance`` is None for an unknown user."""
    if balance is None:
        return f"unknown user {user_id}"
    return f"insufficient funds: balance {balance:.2f}, amount {amount:.2f}"


def cancel_answer(refunded: Decimal | None) -> PaymentCancelStatus:
    """The answer to a cancel that refunded ``refunded`` (None when nothing was refunded)."""
    if refunded is None:
        return PaymentCancelStatus.NOTHING_CHARGED
    return PaymentCancelStatus.PAYMENT_REFUNDED


HOLD = ProcessPayment
RELEASE = CancelPayment
STATUSES = Statuses(*ChargeStatus)
ACCEPTED = PaymentStatus.PAYMENT_APPROVED
REFUSED = PaymentStatus.PAYMENT_REJECTED
NOTHING = ZERO
"""The amount of a tombstone."""


def holder_of(command: ProcessPayment | CancelPayment) -> int:
    return command.userID


def amount_of(command: ProcessPayment) -> Decimal:
    return command.amount


def answer_hold(
    message: ProcessPayment, status: PaymentStatus, reason: str | None
) -> tuple[str, PaymentProcessed]:
    """The answer to ``message``: ``status``, with ``reason`` for a rejection."""
    answer = {**dict(message), "status": status, "reason": reason}
    return topics.PAYMENT_PROCESSED, PaymentProcessed.model_validate(answer)


def answer_release(
    message: CancelPayment, refunded: Decimal | None
) -> tuple[str, PaymentCancelled]:
    """The answer to ``message``, a cancel that refunded ``refunded`` (None: nothing).

    Only an approved charge gives money back; anything else was never charged or has
    already been refunded, so a cancel of it is answered ``NOTHING_CHARGED``, amount 0.
    """
    amount = ZERO if refunded is None else refunded
    answer = {**dict(message), "amount": amount, "status": cancel_answer(refunded)}
    return topics.PAYMENT_CANCELLED, PaymentCancelled.model_validate(answer)
