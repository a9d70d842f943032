"""What an operator reads and does, on every backend: the history's message columns,
the search (``data.userID`` is read out of JSON text), actions and their audit entries."""

from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.statuses import StockStatus
from ordersaga.messaging.envelope import Trace, new_traceparent
from ordersaga.messaging.handler import BatchItem, HandlerContext
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.search import SagaQuery
from ordersaga.saga.state import SagaStatus
from ordersaga.services.orchestrator.handlers import subscriptions
from ordersaga.services.orchestrator.operations import NotCancellable, SagaOperations
from ordersaga.services.orchestrator.tables import outbox
from ordersaga.services.orchestrator.wiring import place_order_runner
from tests.persistence.conftest import Databases
from tests.saga_fixtures import an_order, reserved

RUNNER = place_order_runner(Settings(reserve_timeout=30, payment_timeout=30))


async def deliver_at(
    engine: AsyncEngine, topic: str, message: object, partition: int, offset: int
) -> tuple[str, list[str]]:
    """Handle ``message`` as read at ``partition``/``offset``; its id and the ids sent."""
    handle = {s.topic: s.handle for s in subscriptions(RUNNER)}[topic]
    saga_id = str(message.orderID)  # type: ignore[attr-defined]
    message_id = str(uuid4())
    cause = Trace(message_id, saga_id, new_traceparent())
    async with engine.begin() as conn:
        context = HandlerContext(conn, cause)
        item = BatchItem(topic, message, context, partition, offset, "the-cause")
        await handle(conn, [item])
    return message_id, [r.headers[h.MESSAGE_ID] for r in context.outgoing]


def operations(engine: AsyncEngine) -> SagaOperations:
    return SagaOperations(Transactions(engine, outbox), RUNNER)


async def test_the_history_says_where_each_message_was_read_and_what_was_sent(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    order = an_order(user=7)
    created, [reserve] = await deliver_at(engine, topics.ORDER_CREATED, order, 2, 41)
    got, [pay] = await deliver_at(engine, topics.PRODUCT_RESERVED, reserved(order), 5, 9)

    shown = await operations(engine).show(str(order.orderID))

    first, second = shown.history
    assert first.origin is not None and second.origin is not None
    assert (first.origin.topic, first.origin.partition, first.origin.offset) == (
        topics.ORDER_CREATED,
        2,
        41,
    )
    assert (second.origin.partition, second.origin.offset, second.message_id) == (5, 9, got)
    assert second.origin.causation_id == "the-cause"
    assert [(s.topic, s.message_id) for s in first.sent] == [(topics.RESERVE_PRODUCT, reserve)]
    assert [(s.topic, s.message_id) for s in second.sent] == [(topics.PROCESS_PAYMENT, pay)]
    assert second.deadline is not None and second.deadline == shown.saga.deadline
    received = [(e.topic, e.message_id) for e in shown.timeline if e.kind == "message_in"]
    assert received == [(topics.ORDER_CREATED, created), (topics.PRODUCT_RESERVED, got)]


async def test_search_filters_on_every_backend(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    mine, theirs, refused = an_order(user=7), an_order(user=8), an_order(user=7)
    for order in (mine, theirs, refused):
        await deliver_at(engine, topics.ORDER_CREATED, order, 0, 0)
    await deliver_at(engine, topics.PRODUCT_RESERVED, reserved(mine), 0, 1)
    no_stock = reserved(refused, StockStatus.UNAVAILABLE, "insufficient stock for product 3")
    await deliver_at(engine, topics.PRODUCT_RESERVED, no_stock, 0, 2)
    ops = operations(engine)

    async def found(step: str | None = None, **filters: object) -> set[str]:
        page = await ops.search(SagaQuery(**filters), step)  # type: ignore[arg-type]
        return {s.saga_id for s in page.sagas}

    assert await found(user_id=7) == {str(mine.orderID), str(refused.orderID)}
    assert await found(user_id=8) == {str(theirs.orderID)}
    assert await found(reason="INSUFFICIENT") == {str(refused.orderID)}
    assert await found(state=SagaStatus.NOTIFYING) == {str(refused.orderID)}
    assert await found("process_payment") == {str(mine.orderID)}
    assert await found(order_id=str(theirs.orderID).upper()) == {str(theirs.orderID)}
    page = await ops.search(SagaQuery(limit=2, descending=False))
    assert page.total == 3 and len(page.sagas) == 2 and page.next_cursor is not None


async def test_a_cancel_is_audited_with_its_compensation_in_the_outbox(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    order, paying = an_order(), an_order()
    for started in (order, paying):
        await deliver_at(engine, topics.ORDER_CREATED, started, 0, 0)
    await deliver_at(engine, topics.PRODUCT_RESERVED, reserved(paying), 0, 1)
    ops = operations(engine)

    done = await ops.cancel(str(order.orderID), actor="alice", reason="customer called")

    assert done.saga.status is SagaStatus.COMPENSATING
    assert (done.audit.actor, done.audit.action, done.audit.reason) == (
        "alice",
        "cancel",
        "customer called",
    )
    shown = await ops.show(str(order.orderID))
    [compensation] = shown.history[-1].sent
    async with engine.connect() as conn:
        queued = (await conn.execute(select(outbox.c.topic, outbox.c.headers))).all()
    assert compensation.topic == topics.CANCEL_PRODUCT_RESERVATION
    assert any(compensation.message_id in str(headers) for _, headers in queued)
    with pytest.raises(NotCancellable, match="pivot"):
        await ops.cancel(str(paying.orderID), actor="alice", reason="too late")
    assert [(a.saga_id, a.action) for a in await ops.audit_entries()] == [
        (str(order.orderID), "cancel")
    ]
