"""Topic names, exactly as on the wire (the original demo's, plus the ones added here)."""

from typing import Final

ORDER_CREATED: Final = "order-created"
RESERVE_PRODUCT: Final = "reserve-product"
PRODUCT_RESERVED: Final = "product-reserved"
PROCESS_PAYMENT: Final = "process-payment"
PAYMENT_PROCESSED: Final = "payment-processed"
CANCEL_PRODUCT_RESERVATION: Final = "cancel-product-reservation"
ORDER_UPDATED: Final = "order-updated"
PRODUCT_RESERVATION_CANCELLED: Final = "product-reservation-cancelled"
CANCEL_PAYMENT: Final = "cancel-payment"
PAYMENT_CANCELLED: Final = "payment-cancelled"
ORDER_STATUS_APPLIED: Final = "order-status-applied"

ALL: Final[tuple[str, ...]] = (
    ORDER_CREATED,
    RESERVE_PRODUCT,
    PRODUCT_RESERVED,
    PROCESS_PAYMENT,
    PAYMENT_PROCESSED,
    CANCEL_PRODUCT_RESERVATION,
    ORDER_UPDATED,
    PRODUCT_RESERVATION_CANCELLED,
    CANCEL_PAYMENT,
    PAYMENT_CANCELLED,
    ORDER_STATUS_APPLIED,
)

DLQ_SUFFIX: Final = ".DLQ"


def dead_letter(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return topic + DLQ_SUFFIX


def with_dead_letters() -> list[str]:
    """Every topic of the contract and its dead-letter topic: what the services create."""
    return [*ALL, *(dead_letter(topic) for topic in ALL)]
