"""The orchestrator behind its consumer loop and outbox relay, on the in-process broker."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import OrderCreated, OrderUpdated, ProductReserved
from ordersaga.contracts.statuses import OrderStatus, StockStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.port import Record
from ordersaga.services.orchestrator.wiring import spec
from tests.support import until


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "orchestrator.sqlite3"))
    yield engine
    await engine.dispose()


def trace_of(record: Record) -> Trace:
    """The trace a participant's reply to ``record`` carries."""
    return Trace(
        message_id=record.headers[h.MESSAGE_ID],
        saga_id=record.headers[h.SAGA_ID],
        traceparent=record.headers[h.TRACEPARENT],
    )


async def test_an_order_out_of_stock_is_cancelled_through_the_broker(engine: AsyncEngine) -> None:
    service = spec(Settings())
    await create_schema(engine, service.metadata)
    broker = InProcessBroker()
    endpoint = Endpoint(
        name=service.name,
        broker=broker,
        engine=engine,
        inbox=service.inbox,
        outbox=service.outbox,
        subscriptions=service.subscriptions,
    )
    created = OrderCreated(
        orderID=uuid4(),
        userID=3,
        productID=3,
        quantity=4,
        amount=Decimal("200.00"),
        status=OrderStatus.ORDER_CREATED,
    )
    producer = broker.producer()
    endpoint.start()
    try:
        order_record = envelope(topics.ORDER_CREATED, created)
        await producer.send_batch([order_record, order_record])  # delivered twice
        await until(lambda: bool(broker.records(topics.RESERVE_PRODUCT)))
        [reserve] = broker.records(topics.RESERVE_PRODUCT)
        refusal = ProductReserved(
            orderID=created.orderID,
            userID=3,
            productID=3,
            quantity=4,
            status=StockStatus.UNAVAILABLE,
            reason="insufficient stock for product 3: 3 on hand, 4 requested",
        )
        reply = envelope(topics.PRODUCT_RESERVED, refusal, trace_of(reserve))
        await producer.send_batch([reply])
        await until(lambda: bool(broker.records(topics.ORDER_UPDATED)))
    finally:
        await endpoint.stop()
        await broker.close()

    [update_record] = broker.records(topics.ORDER_UPDATED)
    update = decode(topics.ORDER_UPDATED, update_record.value)
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.ORDER_CANCELLED
    assert update.reason == "stock: insufficient stock for product 3: 3 on hand, 4 requested"
    assert len(broker.records(topics.RESERVE_PRODUCT)) == 1
    assert reserve.headers[h.CAUSATION_ID] == order_record.headers[h.MESSAGE_ID]
    trace_ids = {r.headers[h.TRACEPARENT].split("-")[1] for r in (reserve, update_record)} | {
        order_record.headers[h.TRACEPARENT].split("-")[1]
    }
    assert len(trace_ids) == 1, "one trace, the order-created's"
    assert {reserve.key, update_record.key} == {str(created.orderID)}
