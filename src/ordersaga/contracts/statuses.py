"""Statuses carried in messages, spelled as the original demo spells them."""

from enum import StrEnum


class OrderStatus(StrEnum):
    ORDER_CREATED = "ORDER_CREATED"
    ORDER_COMPLETED = "ORDER_COMPLETED"
    ORDER_CANCELLED = "ORDER_CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self is not OrderStatus.ORDER_CREATED


class StockStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"


class PaymentStatus(StrEnum):
    PAYMENT_APPROVED = "PAYMENT_APPROVED"
    PAYMENT_REJECTED = "PAYMENT_REJECTED"


class ReservationCancelStatus(StrEnum):
    """Answer to ``cancel-product-reservation``: what the stock service did."""

    RESERVATION_RELEASED = "RESERVATION_RELEASED"
    NOTHING_RESERVED = "NOTHING_RESERVED"


class PaymentCancelStatus(StrEnum):
    """Answer to ``cancel-payment``: what the payment service did."""

    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    NOTHING_CHARGED = "NOTHING_CHARGED"
