"""The place-order saga as its tests drive it: an order, the replies its participants
give, a clock the test sets, and one delivery to the orchestrator's handlers."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    OrderCreated,
    OrderStatusApplied,
    PaymentCancelled,
    PaymentProcessed,
    ProductReservationCancelled,
    ProductReserved,
    WireMessage,
)
from ordersaga.contracts.statuses import (
    OrderStatus,
    PaymentCancelStatus,
    PaymentStatus,
    ReservationCancelStatus,
    StockStatus,
)
from ordersaga.messaging.envelope import Trace, new_traceparent
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.saga.runner import SagaRunner
from ordersaga.services.orchestrator.handlers import subscriptions

PRICE = Decimal("50.00")
"""Product 3's price in the sample catalog."""


@dataclass
class SetClock:
    """A clock that says what the test set it to."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def an_order(user: int = 1, product: int = 3, quantity: int = 1) -> OrderCreated:
    """A new order (a fresh id), priced as product 3."""
    return OrderCreated(
        orderID=uuid4(),
        userID=user,
        productID=product,
        quantity=quantity,
        amount=PRICE * quantity,
        status=OrderStatus.ORDER_CREATED,
    )


def reserved(
    order: OrderCreated, status: StockStatus = StockStatus.AVAILABLE, reason: str | None = None
) -> WireMessage:
    return ProductReserved(
        orderID=order.orderID,
        userID=order.userID,
        productID=order.productID,
        quantity=order.quantity,
        status=status,
        reason=reason,
    )


def paid(
    order: OrderCreated,
    status: PaymentStatus = PaymentStatus.PAYMENT_APPROVED,
    reason: str | None = None,
) -> WireMessage:
    return PaymentProcessed(
        orderID=order.orderID,
        userID=order.userID,
        amount=order.amount,
        status=status,
        reason=reason,
    )


def released(order: OrderCreated) -> WireMessage:
    return ProductReservationCancelled(
        orderID=order.orderID,
        productID=order.productID,
        quantity=order.quantity,
        status=ReservationCancelStatus.RESERVATION_RELEASED,
    )


def refunded(order: OrderCreated) -> WireMessage:
    return PaymentCancelled(
        orderID=order.orderID,
        userID=order.userID,
        amount=order.amount,
        status=PaymentCancelStatus.PAYMENT_REFUNDED,
    )


def applied(order: OrderCreated, status: OrderStatus) -> WireMessage:
    return OrderStatusApplied(orderID=order.orderID, status=status)


@dataclass
class Sent:
    """What one delivery made the orchestrator send, decoded, with its headers."""

    messages: list[tuple[str, WireMessage]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def topics(self) -> list[str]:
        return [topic for topic, _ in self.messages]


async def deliver(
    engine: AsyncEngine,
    runner: SagaRunner,
    topic: str,
    message: WireMessage,
    message_id: str | None = None,
) -> Sent:
    """Run the orchestrator's handler of ``topic`` in a transaction, as its consumer would;
    what it sent, each caused by ``message`` and in its trace."""
    handle = {s.topic: s.handle for s in subscriptions(runner)}[topic]
    saga_id = message.orderID
    cause = Trace(message_id or str(uuid4()), str(saga_id), new_traceparent())
    async with engine.begin() as conn:
        ctx = HandlerContext(conn, cause)
        await handle(conn, [BatchItem(topic, message, ctx)])
    sent = Sent()
    for record in ctx.outgoing:
        sent.messages.append((record.topic, decode(record.topic, record.value)))
        sent.headers.append(dict(record.headers))
        assert record.headers[h.CAUSATION_ID] == cause.message_id
        assert record.headers[h.TRACEPARENT] == cause.traceparent
    return sent
