"""Running handlers as the consumer loop does: inbox, handler and outbox in one transaction."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar
from uuid import UUID, uuid4

from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import (
    CancelPayment,
    CancelProductReservation,
    OrderMessage,
    ProcessPayment,
    ReserveProduct,
    WireMessage,
)
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.messaging.envelope import Trace, new_traceparent
from ordersaga.messaging.handler import BatchHandler, BatchItem, HandlerContext
from ordersaga.messaging.inbox import record_once
from ordersaga.messaging.outbox import write_outbox

T = TypeVar("T")
M = TypeVar("M", bound=OrderMessage)


async def deliver(
    engine: AsyncEngine,
    inbox: Table,
    outbox: Table,
    handler: BatchHandler,
    message: WireMessage,
    *,
    message_id: str | None = None,
    topic: str = "test-topic",
) -> WireMessage | None:
    """Handle ``message`` once in its own transaction; its reply, or None for a duplicate."""
    message_id = message_id or str(uuid4())
    trace = Trace(message_id, str(message.orderID), new_traceparent())
    async with engine.begin() as conn:
        if not await record_once(conn, inbox, message_id, topic):
            return None
        ctx = HandlerContext(conn, trace)
        await handler(conn, [BatchItem(topic, message, ctx)])
        await write_outbox(conn, outbox, ctx.outgoing)
    [reply] = ctx.outgoing
    return decode(reply.topic, reply.value)


async def until_committed(attempt: Callable[[], Awaitable[T]], tries: int = 200) -> T:
    """Run ``attempt`` again while its transaction loses a race, as the consumer retries."""
    for _ in range(tries):
        try:
            return await attempt()
        except (OperationalError, IntegrityError):
            await asyncio.sleep(random.uniform(0.001, 0.02))
    raise AssertionError(f"no commit after {tries} tries")


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(select(func.count()).select_from(table))
    return int(found or 0)


def order_message(
    kind: type[M],
    *,
    order_id: UUID | None = None,
    user_id: int = 1,
    product_id: int = 1,
    quantity: int = 1,
    amount: Decimal = Decimal("20.00"),
) -> M:
    """A command of the order-message shape: reserve, cancel, process or cancel payment."""
    return kind(
        orderID=order_id or uuid4(),
        userID=user_id,
        productID=product_id,
        quantity=quantity,
        amount=amount,
        status=OrderStatus.ORDER_CREATED,
    )


def reserve(product_id: int, quantity: int, order_id: UUID | None = None) -> ReserveProduct:
    return order_message(
        ReserveProduct, order_id=order_id, product_id=product_id, quantity=quantity
    )


def cancel_reservation(order_id: UUID, product_id: int, quantity: int) -> CancelProductReservation:
    return order_message(
        CancelProductReservation, order_id=order_id, product_id=product_id, quantity=quantity
    )


def charge(user_id: int, amount: Decimal, order_id: UUID | None = None) -> ProcessPayment:
    return order_message(ProcessPayment, order_id=order_id, user_id=user_id, amount=amount)


def cancel_payment(order_id: UUID, user_id: int, amount: Decimal) -> CancelPayment:
    return order_message(CancelPayment, order_id=order_id, user_id=user_id, amount=amount)
