"""The orchestrator's handlers: an order-created starts a saga, every reply moves it on.

The saga id is the order id. Messages are sent with ``ctx.send``, so they carry the
incoming message's trace (saga id, traceparent, causation id) and reach the outbox
only if the transaction commits.
"""

from collections.abc import Sequence
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderCreated, WireMessage
from ordersaga.messaging.handler import BatchItem, HandlerContext, Subscription
from ordersaga.saga.batch import Reply, SagaEvent, Start, run_events
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


async def handle_saga_batch(
    runner: SagaRunner, conn: AsyncConnection, items: Sequence[BatchItem]
) -> None:
    """Handle order-created messages and replies together, as one by one in their order."""
    sent = await run_events(runner, conn, [_event(item) for item in items])
    for item, messages in zip(items, sent, strict=True):
        _send(item.context, messages)


def subscriptions(runner: SagaRunner) -> list[Subscription]:
    """order-created, and every topic any registered version of the saga waits on,
    bound to ``runner``.

    All of them share one batch handler, so a batch's messages of one saga, whatever
    their topics, are applied together and in order.
    """
    replies: Sequence[str] = runner.definitions.topics
    models = runner.definitions.reply_models
    batch = partial(handle_saga_batch, runner)
    return [
        Subscription(topics.ORDER_CREATED, partial(handle_order_created, runner), batch),
        *(
            Subscription(topic, partial(handle_reply, runner, topic), batch, models.get(topic))
            for topic in replies
        ),
    ]


def _event(item: BatchItem) -> SagaEvent:
    message, cause = item.message, item.context.cause
    if item.topic == topics.ORDER_CREATED:
        return Start(str(message.orderID), order_data(message), cause.traceparent, cause.message_id)
    return Reply(str(message.orderID), item.topic, message, cause.message_id)


def _send(ctx: HandlerContext, messages: Sequence[Send]) -> None:
    for topic, message in messages:
        ctx.send(topic, message)
