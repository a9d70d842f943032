"""The orchestrator's handler: an order-created starts a saga, every reply moves it on.

The saga id is the order id. Messages are sent through each item's context, so they
carry the incoming message's trace (saga id, traceparent, causation id) and reach the
outbox only if the transaction commits.
"""

from collections.abc import Sequence
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts import topics
from ordersaga.contracts.messages import MODEL_BY_TOPIC, OrderCreated, WireMessage
from ordersaga.messaging.handler import BatchItem, Subscription
from ordersaga.saga.rows import Origin
from ordersaga.saga.runner import Reply, SagaEvent, SagaRunner, Start
from ordersaga.services.orchestrator.place_order import order_data


async def handle_saga_events(
    runner: SagaRunner, conn: AsyncConnection, items: Sequence[BatchItem]
) -> None:
    """Handle order-created messages and replies together, as one by one in their order:
    an order-created starts its order's saga (a saga started before is kept), a reply or
    acknowledgement moves it on."""
    done = await runner.apply(conn, [_event(item) for item in items])
    for item, transition in zip(items, done, strict=True):
        for topic, message, message_id in transition.outgoing() if transition else ():
            item.context.send(topic, message, message_id=message_id)


def subscriptions(runner: SagaRunner) -> list[Subscription]:
    """order-created, and every topic any registered version of the saga waits on,
    bound to ``runner``.

    All of them share one handler, so a batch's messages of one saga, whatever their
    topics, are applied together and in order.
    """
    handle = partial(handle_saga_events, runner)
    # A version's own reply topics carry their models; the contract's, the contract's.
    models: dict[str, type[WireMessage]] = {**MODEL_BY_TOPIC, **runner.definitions.reply_models}
    return [
        Subscription(topics.ORDER_CREATED, OrderCreated, handle),
        *(Subscription(topic, models[topic], handle) for topic in runner.definitions.topics),
    ]


def _event(item: BatchItem) -> SagaEvent:
    message, cause = item.message, item.context.cause
    origin = Origin(item.topic, item.partition, item.offset, item.causation_id)
    if item.topic == topics.ORDER_CREATED:
        saga_id, data = str(message.orderID), order_data(message)
        return Start(saga_id, data, cause.traceparent, cause.message_id, origin)
    return Reply(str(message.orderID), item.topic, message, cause.message_id, origin)
