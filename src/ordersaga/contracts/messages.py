"""Message models of the wire contract: UTF-8 JSON with the original field names.

Commands are named imperatively (``ReserveProduct``), events in the past tense
(``ProductReserved``). Every message carries ``orderID``, which is also its key.

Readers are tolerant: a field a model does not know is ignored, so a producer upgraded
before its consumers, adding a field, does not turn its messages into poison for them
(the HTTP API, by contrast, refuses unknown fields). The fields a model knows are
checked as strictly as the databases would: a value no database column could hold is
the message's own fault, found while decoding, rather than a failure in a handler.
"""

from decimal import Decimal
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ordersaga.contracts import topics
from ordersaga.contracts.money import Money
from ordersaga.contracts.statuses import (
    OrderStatus,
    PaymentCancelStatus,
    PaymentStatus,
    ReservationCancelStatus,
    StockStatus,
)

INT_MAX = 2**31 - 1
"""The largest value of the INTEGER columns that hold ids and quantities."""
MONEY_LIMIT = Decimal(10**10)
"""Amounts are below this: NUMERIC/DECIMAL(12,2) columns."""

PositiveInt = Annotated[int, Field(gt=0, le=INT_MAX)]
Amount = Annotated[Money, Field(ge=0, lt=MONEY_LIMIT)]


class WireMessage(BaseModel):
    """Base of every message: ignores fields it does not know, keyed by ``orderID``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    message_type: ClassVar[str] = "Message"

    orderID: UUID

    @property
    def key(self) -> str:
        return str(self.orderID)


class OrderMessage(WireMessage):
    """The original demo's order DTO, used on order-created, reserve-product,
    process-payment, cancel-product-reservation, cancel-payment and order-updated."""

    userID: PositiveInt
    productID: PositiveInt
    quantity: PositiveInt
    amount: Amount
    status: OrderStatus
    reason: str | None = None


class OrderCreated(OrderMessage):
    message_type: ClassVar[str] = "OrderCreated"


class ReserveProduct(OrderMessage):
    message_type: ClassVar[str] = "ReserveProduct"


class ProcessPayment(OrderMessage):
    message_type: ClassVar[str] = "ProcessPayment"


class CancelProductReservation(OrderMessage):
    message_type: ClassVar[str] = "CancelProductReservation"


class CancelPayment(OrderMessage):
    message_type: ClassVar[str] = "CancelPayment"


class OrderUpdated(OrderMessage):
    message_type: ClassVar[str] = "OrderUpdated"


class ProductReserved(WireMessage):
    message_type: ClassVar[str] = "ProductReserved"

    userID: PositiveInt
    productID: PositiveInt
    quantity: PositiveInt
    status: StockStatus
    reason: str | None = None


class PaymentProcessed(WireMessage):
    message_type: ClassVar[str] = "PaymentProcessed"

    userID: PositiveInt
    amount: Amount
    status: PaymentStatus
    reason: str | None = None


class ProductReservationCancelled(WireMessage):
    """Acknowledges a cancel-product-reservation; ``quantity`` is what went back on hand."""

    message_type: ClassVar[str] = "ProductReservationCancelled"

    productID: PositiveInt
    quantity: Annotated[int, Field(ge=0, le=INT_MAX)]
    status: ReservationCancelStatus


class PaymentCancelled(WireMessage):
    """Acknowledges a cancel-payment; ``amount`` is what was refunded."""

    message_type: ClassVar[str] = "PaymentCancelled"

    userID: PositiveInt
    amount: Amount
    status: PaymentCancelStatus


MODEL_BY_TOPIC: dict[str, type[WireMessage]] = {
    topics.ORDER_CREATED: OrderCreated,
    topics.RESERVE_PRODUCT: ReserveProduct,
    topics.PRODUCT_RESERVED: ProductReserved,
    topics.PROCESS_PAYMENT: ProcessPayment,
    topics.PAYMENT_PROCESSED: PaymentProcessed,
    topics.CANCEL_PRODUCT_RESERVATION: CancelProductReservation,
    topics.ORDER_UPDATED: OrderUpdated,
    topics.PRODUCT_RESERVATION_CANCELLED: ProductReservationCancelled,
    topics.CANCEL_PAYMENT: CancelPayment,
    topics.PAYMENT_CANCELLED: PaymentCancelled,
}
