"""The orchestrator's handlers: an order-created starts a saga, every reply moves it on.

The saga id is the order id. Messages are sent with ``ctx.send``, so they carry the
incoming message's trace (saga id, traceparent, causation id) and reach the outbox
only if the transaction commits.
"""

from collections.abc import Sequence
from functools import partial

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated, WireMessage
from ordersaga.messaging.consumer import HandlerContext, Subscription
from ordersaga.saga.definition import Send
from ordersaga.saga.runner import SagaRunner
from ordersaga.services.orchestrator.place_order import order_data


async def handle_order_created(
    runner: SagaRunner, ctx: HandlerContext, message: OrderCreated
) -> None:
    """Start the order's saga and command its first step; a saga started before is kept."""
    messages = await runner.start(
        ctx.conn,
        str(message.orderID),
        order_data(message),
        traceparent=ctx.cause.traceparent,
        message_id=ctx.cause.message_id,
    )
    _send(ctx, messages)


async def handle_reply(
    runner: SagaRunner, topic: str, ctx: HandlerContext, message: WireMessage
) -> None:
    """Apply a reply or acknowledgement on ``topic`` to its order's saga."""
    messages = await runner.reply(
        ctx.conn, str(message.orderID), topic, message, ctx.cause.message_id
    )
    _send(ctx, messages)


def subscriptions(runner: SagaRunner) -> list[Subscription]:
    """order-created, and every topic the saga waits on, bound to ``runner``."""
    replies: Sequence[str] = runner.definition.topics
    return [
        Subscription(topics.ORDER_CREATED, partial(handle_order_created, runner)),
        *(Subscription(topic, partial(handle_reply, runner, topic)) for topic in replies),
    ]


def _send(ctx: HandlerContext, messages: Sequence[Send]) -> None:
    for topic, message in messages:
        ctx.send(topic, message)
