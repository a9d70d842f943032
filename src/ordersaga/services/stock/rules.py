"""Reservation rules: what a reservation's state means for the answers stock gives.

Pure functions, no I/O: the handler (:mod:`~ordersaga.services.holdings`) decides with
these and the database enforces.
"""

from enum import StrEnum

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelProductReservation,
    ProductReservationCancelled,
    ProductReserved,
    ReserveProduct,
)
from ordersaga.contracts.statuses import ReservationCancelStatus, StockStatus
from ordersaga.services.holdings import Statuses


class ReservationStatus(StrEnum):
    """The state of a row in ``reservations``: one row per order, never deleted.

    Declared in the order of :class:`~ordersaga.services.holdings.Statuses`."""

    RESERVED = "RESERVED"
    """Stock was deducted for the order and is held by it."""
    REJECTED = "REJECTED"
    """The order asked for more than was on hand (or for an unknown product)."""
    RELEASED = "RELEASED"
    """The reservation was compensated: its quantity went back on hand."""
    CANCELLED = "CANCELLED"
    """Tombstone: the cancel arrived before any reserve, so a later reserve deducts nothing."""


CANCELLED_BEFORE_RESERVED = "reservation was cancelled before it was made"
ALREADY_RELEASED = "reservation was cancelled and its stock released"


def answer_existing(
    status: ReservationStatus, reason: str | None
) -> tuple[StockStatus, str | None]:
    """The answer to a reserve for an order that already has a reservation row.

    A reserve delivered again (or sent again after a timeout) is answered as the first
    one was; a reserve that follows its own cancel is refused, so nothing is held for a
    saga that has already given up on it.
    """
    if status is ReservationStatus.RESERVED:
        return StockStatus.AVAILABLE, None
    if status is ReservationStatus.REJECTED:
        return StockStatus.UNAVAILABLE, reason
    if status is ReservationStatus.CANCELLED:
        return StockStatus.UNAVAILABLE, CANCELLED_BEFORE_RESERVED
    return StockStatus.UNAVAILABLE, ALREADY_RELEASED


def rejection_reason(product_id: int, on_hand: int | None, requested: int) -> str:
    """Why a reserve of ``requested`` units failed; ``on_hand`` is None for an unknown product."""
    if on_hand is None:
        return f"unknown product {product_id}"
    return f"insufficient stock for product {product_id}: {on_hand} on hand, {requested} requested"


def cancel_answer(released: int) -> ReservationCancelStatus:
    """The answer to a cancel that put ``released`` units back on hand."""
    if released > 0:
        return ReservationCancelStatus.RESERVATION_RELEASED
    return ReservationCancelStatus.NOTHING_RESERVED


HOLD = ReserveProduct
RELEASE = CancelProductReservation
STATUSES = Statuses(*ReservationStatus)
ACCEPTED = StockStatus.AVAILABLE
REFUSED = StockStatus.UNAVAILABLE
NOTHING = 0
"""The quantity of a tombstone."""


def holder_of(command: ReserveProduct | CancelProductReservation) -> int:
    return command.productID


def amount_of(command: ReserveProduct) -> int:
    return command.quantity


def answer_hold(
    message: ReserveProduct, status: StockStatus, reason: str | None
) -> tuple[str, ProductReserved]:
    """The answer to ``message``: ``status``, with ``reason`` for a refusal."""
    answer = {**dict(message), "status": status, "reason": reason}
    return topics.PRODUCT_RESERVED, ProductReserved.model_validate(answer)


def answer_release(
    message: CancelProductReservation, released: int | None
) -> tuple[str, ProductReservationCancelled]:
    """The answer to ``message``, a cancel that put ``released`` units back (None: none).

    Only a held reservation gives stock back; anything else was never deducted or has
    already been given back, so a cancel of it is answered ``NOTHING_RESERVED``, 0 units.
    """
    quantity = released or 0
    answer = {**dict(message), "quantity": quantity, "status": cancel_answer(quantity)}
    return topics.PRODUCT_RESERVATION_CANCELLED, ProductReservationCancelled.model_validate(answer)
