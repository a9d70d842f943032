"""What is on the wire, read with a plain Kafka client (aiokafka, as ``admin``): the
contract's topic names, field names, JSON types, statuses, keys and headers."""

import asyncio
import json
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from ordersaga.config import Settings
from ordersaga.messaging.kafka_config import client_options
from tests.auth_support import operator_headers
from tests.realstack.stack import Stack
from tests.realstack.test_real_stack import place, wait_all

ORDER_FIELDS = {"orderID", "userID", "productID", "quantity", "amount", "status"}
SHAPES: dict[str, tuple[set[str], set[str]]] = {
    "order-created": (ORDER_FIELDS, {"ORDER_CREATED"}),
    "reserve-product": (ORDER_FIELDS, {"ORDER_CREATED"}),
    "process-payment": (ORDER_FIELDS, {"ORDER_CREATED"}),
    "cancel-product-reservation": (ORDER_FIELDS, {"ORDER_CREATED", "ORDER_CANCELLED"}),
    "order-updated": (ORDER_FIELDS, {"ORDER_COMPLETED", "ORDER_CANCELLED"}),
    "product-reserved": (
        {"orderID", "userID", "productID", "quantity", "status"},
        {"AVAILABLE", "UNAVAILABLE"},
    ),
    "payment-processed": (
        {"orderID", "userID", "amount", "status"},
        {"PAYMENT_APPROVED", "PAYMENT_REJECTED"},
    ),
    "order-status-applied": ({"orderID", "status"}, {"ORDER_COMPLETED", "ORDER_CANCELLED"}),
    "product-reservation-cancelled": (
        {"orderID", "productID", "quantity", "status"},
        {"RESERVATION_RELEASED", "NOTHING_RESERVED"},
    ),
}
HEADERS = {
    "message-id",
    "message-type",
    "saga-id",
    "causation-id",
    "traceparent",
    "sent-at",
    "schema-version",
}


async def read_topics(names: list[str], expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        *names,
        **client_options(Settings()),  # as admin, on the secure listener
        group_id=f"wire-check-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def test_messages_on_the_wire_have_the_contract_shapes(stack: Stack) -> None:
    stack.start_all()
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        ids = [
            place(http, 1, 1, 1)["orderID"],
            place(http, 3, 3, 4)["orderID"],
            place(http, 1, 3, 2)["orderID"],
        ]
        wait_all(http, ids)
    # completed: 7 messages; out of stock: 5; unaffordable: 9 (each with its acknowledgement)
    records = asyncio.run(read_topics(sorted(SHAPES), expected=21))
    assert len(records) == 21
    seen = set()
    for record in records:
        fields, statuses = SHAPES[record.topic]
        value = json.loads(record.value)
        assert set(value) - {"reason"} == fields, (record.topic, value)
        assert value["status"] in statuses, (record.topic, value)
        assert record.key.decode() == value["orderID"] == str(uuid.UUID(value["orderID"]))
        if "amount" in value:
            assert isinstance(value["amount"], int | float), value
        headers = {k: v.decode() for k, v in record.headers}
        assert set(headers) >= HEADERS, record.topic
        assert headers["saga-id"] == value["orderID"]
        seen.add(record.topic)
    assert seen == set(SHAPES), f"flows touched {sorted(seen)}"
