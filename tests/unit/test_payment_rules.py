"""The payment rules, without a database."""

from decimal import Decimal

import pytest

from ordersaga.contracts.statuses import PaymentCancelStatus, PaymentStatus
from ordersaga.services.payment.rules import (
    PAYMENT_CANCELLED,
    ChargeStatus,
    answer_existing,
    cancel_answer,
    rejection_reason,
)


def test_an_approved_payment_is_answered_approved_again() -> None:
    assert answer_existing(ChargeStatus.APPROVED, None) == (PaymentStatus.PAYMENT_APPROVED, None)


def test_a_rejected_payment_is_answered_with_its_first_reason() -> None:
    reason = "insufficient funds: balance 80.00, amount 90.00"
    assert answer_existing(ChargeStatus.REJECTED, reason) == (
        PaymentStatus.PAYMENT_REJECTED,
        reason,
    )


@pytest.mark.parametrize("status", [ChargeStatus.VOIDED, ChargeStatus.REFUNDED])
def test_a_payment_after_its_cancel_is_refused(status: ChargeStatus) -> None:
    assert answer_existing(status, None) == (PaymentStatus.PAYMENT_REJECTED, PAYMENT_CANCELLED)


def test_an_unknown_user_is_named_in_the_reason() -> None:
    assert rejection_reason(42, None, Decimal("10.00")) == "unknown user 42"


def test_a_shortfall_reason_shows_both_amounts_to_the_cent() -> None:
    reason = rejection_reason(1, Decimal("80"), Decimal("90.5"))
    assert reason == "insufficient funds: balance 80.00, amount 90.50"


def test_a_cancel_that_refunded_says_so() -> None:
    assert cancel_answer(Decimal("20.00")) is PaymentCancelStatus.PAYMENT_REFUNDED
    assert cancel_answer(None) is PaymentCancelStatus.NOTHING_CHARGED
