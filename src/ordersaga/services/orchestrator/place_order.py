"""The place-order saga: reserve the stock, then take the payment (the pivot).

Its data is the order's fields as JSON-able values (``amount`` as a string, so it stays
exact); every message is built from them. Reasons are written for an operator:
"stock: insufficient stock for product 3: 0 on hand, 1 requested",
"payment did not answer within 30s".
"""

from dataclasses import replace
from typing import Any

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelPayment,
    CancelProductReservation,
    OrderCreated,
    OrderUpdated,
    PaymentProcessed,
    ProcessPayment,
    ProductReserved,
    ReserveProduct,
    WireMessage,
)
from ordersaga.contracts.statuses import OrderStatus, PaymentStatus, StockStatus
from ordersaga.saga.definition import SagaData, SagaDefinition, Send, Step, StepKind, Timeouts

RESERVE_TIMEOUT = "reserve"
PAYMENT_TIMEOUT = "payment"
COMPENSATION_TIMEOUT = "compensation"


def order_data(message: OrderCreated) -> dict[str, Any]:
    """The saga's data for a new order: its fields, JSON-able."""
    return {
        "orderID": str(message.orderID),
        "userID": message.userID,
        "productID": message.productID,
        "quantity": message.quantity,
        "amount": str(message.amount),
    }


def timeouts(*, reserve: float, payment: float, compensation: float) -> Timeouts:
    """The seconds each of the saga's timeouts lasts."""
    return {
        RESERVE_TIMEOUT: reserve,
        PAYMENT_TIMEOUT: payment,
        COMPENSATION_TIMEOUT: compensation,
    }


def _order(data: SagaData, status: OrderStatus, reason: str | None = None) -> dict[str, Any]:
    return {**data, "status": status, "reason": reason}


def _reserve(data: SagaData) -> WireMessage:
    return ReserveProduct.model_validate(_order(data, OrderStatus.ORDER_CREATED))


def _reserved(reply: WireMessage) -> bool:
    return isinstance(reply, ProductReserved) and reply.status is StockStatus.AVAILABLE


def _cancel_reservation(data: SagaData) -> WireMessage:
    return CancelProductReservation.model_validate(_order(data, OrderStatus.ORDER_CANCELLED))


def _pay(data: SagaData) -> WireMessage:
    return ProcessPayment.model_validate(_order(data, OrderStatus.ORDER_CREATED))


def _paid(reply: WireMessage) -> bool:
    return isinstance(reply, PaymentProcessed) and reply.status is PaymentStatus.PAYMENT_APPROVED


def _cancel_payment(data: SagaData) -> WireMessage:
    return CancelPayment.model_validate(_order(data, OrderStatus.ORDER_CANCELLED))


OUTCOME_TOPIC = topics.ORDER_UPDATED
"""Where the saga announces its outcome to the order service."""


def _completed(data: SagaData) -> Send:
    return OUTCOME_TOPIC, OrderUpdated.model_validate(
        _order(data, OrderStatus.ORDER_COMPLETED)
    )


def _cancelled(data: SagaData, reason: str) -> Send:
    return OUTCOME_TOPIC, OrderUpdated.model_validate(
        _order(data, OrderStatus.ORDER_CANCELLED, reason)
    )


RESERVE_STOCK = Step(
    name="reserve_stock",
    party="stock",
    command_topic=topics.RESERVE_PRODUCT,
    command=_reserve,
    reply_topic=topics.PRODUCT_RESERVED,
    succeeded=_reserved,
    compensation_topic=topics.CANCEL_PRODUCT_RESERVATION,
    compensation=_cancel_reservation,
    ack_topic=topics.PRODUCT_RESERVATION_CANCELLED,
    timeout=RESERVE_TIMEOUT,
)

PROCESS_PAYMENT = Step(
    name="process_payment",
    party="payment",
    command_topic=topics.PROCESS_PAYMENT,
    command=_pay,
    reply_topic=topics.PAYMENT_PROCESSED,
    succeeded=_paid,
    compensation_topic=topics.CANCEL_PAYMENT,
    compensation=_cancel_payment,
    ack_topic=topics.PAYMENT_CANCELLED,
    timeout=PAYMENT_TIMEOUT,
    kind=StepKind.PIVOT,
)

PLACE_ORDER = SagaDefinition(
    name="place-order",
    steps=(RESERVE_STOCK, PROCESS_PAYMENT),
    compensation_timeout=COMPENSATION_TIMEOUT,
    on_completed=_completed,
    on_cancelled=_cancelled,
    outcome_ack_topic=topics.ORDER_STATUS_APPLIED,
    outcome_name="update_order",
    version=1,
)
"""Stock is compensatable; payment is the pivot: once approved, the order completes. The
order-updated that says so is acknowledged by the order service (order-status-applied)
and sent again until it is."""


def place_order_saga(
    max_compensation_attempts: int, definition: SagaDefinition = PLACE_ORDER
) -> SagaDefinition:
    """The place-order saga (or a version of it), parking after ``max_compensation_attempts``
    compensation sends."""
    return replace(definition, max_compensation_attempts=max_compensation_attempts)
