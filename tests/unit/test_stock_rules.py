"""The reservation rules, without a database."""

import pytest

from ordersaga.contracts.statuses import ReservationCancelStatus, StockStatus
from ordersaga.services.stock.rules import (
    ALREADY_RELEASED,
    CANCELLED_BEFORE_RESERVED,
    ReservationStatus,
    answer_existing,
    cancel_answer,
    rejection_reason,
)


def test_a_held_reservation_is_answered_available_again() -> None:
    assert answer_existing(ReservationStatus.RESERVED, None) == (StockStatus.AVAILABLE, None)


def test_a_rejected_reservation_is_answered_with_its_first_reason() -> None:
    reason = "insufficient stock for product 3: 1 on hand, 2 requested"
    assert answer_existing(ReservationStatus.REJECTED, reason) == (StockStatus.UNAVAILABLE, reason)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ReservationStatus.CANCELLED, CANCELLED_BEFORE_RESERVED),
        (ReservationStatus.RELEASED, ALREADY_RELEASED),
    ],
)
def test_a_reserve_after_its_cancel_is_refused(status: ReservationStatus, reason: str) -> None:
    assert answer_existing(status, None) == (StockStatus.UNAVAILABLE, reason)


def test_an_unknown_product_is_named_in_the_reason() -> None:
    assert rejection_reason(9, None, 1) == "unknown product 9"


def test_a_shortage_reason_says_what_is_on_hand_and_what_was_asked() -> None:
    assert rejection_reason(3, 1, 2) == "insufficient stock for product 3: 1 on hand, 2 requested"


def test_a_cancel_that_released_units_says_so() -> None:
    assert cancel_answer(2) is ReservationCancelStatus.RESERVATION_RELEASED
    assert cancel_answer(0) is ReservationCancelStatus.NOTHING_RESERVED
