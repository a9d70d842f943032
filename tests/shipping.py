"""A test-only retriable step after payment, "ship", and a fake participant serving it.

The step runs on test-only topics, so the place-order wire contract is untouched: the
orchestrator decodes the replies with the step's own ``reply_model``. The participant
is a fake with a policy: answer from the n-th send of an order on, after a delay, or
never.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import ClassVar

from ordersaga.config import Settings
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.port import OutgoingMessage, Producer
from ordersaga.saga.clock import SagaClock
from ordersaga.saga.definition import SagaData, SagaDefinition, Step, StepKind
from ordersaga.saga.runner import SagaRunner
from ordersaga.services.orchestrator.place_order import PLACE_ORDER
from ordersaga.services.orchestrator.wiring import place_order_runner

SHIP_ORDER = "test-ship-order"
ORDER_SHIPPED = "test-order-shipped"
SHIPPING_TOPICS = [SHIP_ORDER, ORDER_SHIPPED]
SHIP_TIMEOUT = "ship"


class ShipOrder(WireMessage):
    message_type: ClassVar[str] = "ShipOrder"
    productID: int
    quantity: int


class OrderShipped(WireMessage):
    message_type: ClassVar[str] = "OrderShipped"
    shipped: bool
    reason: str | None = None


def _ship(data: SagaData) -> WireMessage:
    return ShipOrder(
        orderID=data["orderID"], productID=data["productID"], quantity=data["quantity"]
    )


def _shipped(reply: WireMessage) -> bool:
    return isinstance(reply, OrderShipped) and reply.shipped


SHIP = Step(
    name="ship",
    party="shipping",
    command_topic=SHIP_ORDER,
    command=_ship,
    reply_topic=ORDER_SHIPPED,
    succeeded=_shipped,
    timeout=SHIP_TIMEOUT,
    kind=StepKind.RETRIABLE,
    reply_model=OrderShipped,
)

WITH_SHIPPING = replace(PLACE_ORDER, steps=(*PLACE_ORDER.steps, SHIP), version=2)
"""Place-order version 2: reserve stock, take the payment (the pivot), then ship."""


def shipping_runner(
    settings: Settings,
    versions: tuple[SagaDefinition, ...] = (PLACE_ORDER, WITH_SHIPPING),
    *,
    ship_timeout: float = 0.2,
    current: int | None = None,
    clock: SagaClock | None = None,
) -> SagaRunner:
    """An orchestrator's runner of ``versions`` of place-order, on its tables."""
    return place_order_runner(
        settings, clock, versions, current=current, more_timeouts={SHIP_TIMEOUT: ship_timeout}
    )


@dataclass
class Shipping:
    """The fake shipping participant: answers an order's ``ship-order`` from its
    ``answer_from``-th send on (0: never), ``delay`` seconds after receiving it."""

    broker: InProcessBroker
    answer_from: int = 1
    delay: float = 0.0
    received: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)

    async def run(self) -> None:
        consumer = self.broker.consumer("test-shipping", [SHIP_ORDER], "test-shipping-1")
        producer = self.broker.producer()
        replies: set[asyncio.Task[None]] = set()
        try:
            while True:
                records = await consumer.poll(100, timeout=0.1)
                for record in records:
                    order = decode(record.topic, record.value, ShipOrder)
                    order_id = str(order.orderID)
                    self.received[order_id] += 1
                    if self.answer_from and self.received[order_id] >= self.answer_from:
                        cause = Trace.from_headers(dict(record.headers), order.orderID)
                        reply = envelope(
                            ORDER_SHIPPED, OrderShipped(orderID=order.orderID, shipped=True), cause
                        )
                        task = asyncio.create_task(self._answer(producer, reply, order_id))
                        replies.add(task)
                        task.add_done_callback(replies.discard)
                if records:
                    await consumer.commit({r.topic_partition: r.offset + 1 for r in records})
        finally:
            for task in list(replies):
                task.cancel()
            await consumer.close()
            await producer.close()

    async def _answer(self, producer: Producer, reply: OutgoingMessage, order_id: str) -> None:
        # A participant that takes its time: latency, not a way of ordering the test.
        await asyncio.sleep(self.delay)
        await producer.send_batch([reply])
        self.answered[order_id] += 1


@asynccontextmanager
async def running(shipping: Shipping) -> AsyncIterator[Shipping]:
    task = asyncio.create_task(shipping.run(), name="test-shipping")
    try:
        yield shipping
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
