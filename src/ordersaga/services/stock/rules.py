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


class ReservationStatus(StrEnum):
    """The state of a row in ``reservations``: one row per order, never deleted."""

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


def answer_reserve(
    message: ReserveProduct, status: StockStatus, reason: str | None
) -> tuple[str, ProductReserved]:
    """The answer to ``message``: ``status``, with ``reason`` for a refusal."""
    return topics.PRODUCT_RESERVED, ProductReserved(
        orderID=message.orderID,
        userID=message.userID,
        productID=message.productID,
        quantity=message.quantity,
        status=status,
        reason=reason,
    )


def answer_cancel(
    message: CancelProductReservation, released: int | None
) -> tuple[str, ProductReservationCancelled]:
    """The answer to ``message``, a cancel that put ``released`` units back (None: none).

    Only a held reservation gives stock back; anything else was never deducted or has
    already been given back, so a cancel of it is answered ``NOTHING_RESERVED``, 0 units.
    """
    return topics.PRODUCT_RESERVATION_CANCELLED, ProductReservationCancelled(
        orderID=message.orderID,
        productID=message.productID,
        quantity=released or 0,
        status=cancel_answer(released or 0),
    )
