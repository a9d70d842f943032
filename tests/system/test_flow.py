"""The three outcomes of the flow, end to end through the HTTP API, in one process."""

from decimal import Decimal
from pathlib import Path

from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from tests.system.conftest import assert_invariants, embedded


async def test_an_affordable_order_in_stock_completes(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (system, api):
        placed = await api.place(user=1, product=1, quantity=2)
        order = await api.wait(placed["orderID"])
        assert order["status"] == "ORDER_COMPLETED"
        assert Decimal(str(order["amount"])) == Decimal("40.00")
        checks = await assert_invariants(system)
    assert "initial 13 = on hand 11 + held by completed 2" in checks[1].figures
    assert "balances 360.00 + charged for completed 40.00" in checks[2].figures


async def test_an_order_beyond_the_stock_is_cancelled_for_stock(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (system, api):
        placed = await api.place(user=3, product=3, quantity=4)  # 3 on hand
        order = await api.wait(placed["orderID"])
        assert order["status"] == "ORDER_CANCELLED"
        assert "stock" in order["reason"]
        updates = [
            decode(topics.ORDER_UPDATED, r.value)
            for r in system.broker.records(topics.ORDER_UPDATED)
        ]
        assert [u.status for u in updates] == ["ORDER_CANCELLED"]
        assert system.broker.records(topics.PROCESS_PAYMENT) == [], "no payment after UNAVAILABLE"
        await assert_invariants(system)


async def test_an_unaffordable_order_is_cancelled_and_its_stock_given_back(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (system, api):
        placed = await api.place(user=1, product=3, quantity=3)  # 150 > 100
        order = await api.wait(placed["orderID"])
        assert order["status"] == "ORDER_CANCELLED"
        assert "funds" in order["reason"]
        released = system.broker.records(topics.PRODUCT_RESERVATION_CANCELLED)
        assert [decode(r.topic, r.value).quantity for r in released] == [3]  # type: ignore[attr-defined]
        checks = await assert_invariants(system)
    assert "on hand 13 + held by completed 0" in checks[1].figures


async def test_every_message_on_the_wire_has_the_contract_headers(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (system, api):
        placed = await api.place(user=2, product=2, quantity=1)
        await api.wait(placed["orderID"])
        await assert_invariants(system)
        flow = [
            topics.ORDER_CREATED,
            topics.RESERVE_PRODUCT,
            topics.PRODUCT_RESERVED,
            topics.PROCESS_PAYMENT,
            topics.PAYMENT_PROCESSED,
            topics.ORDER_UPDATED,
        ]
        records = [r for t in flow for r in system.broker.records(t)]
    assert len(records) == 6
    assert {r.key for r in records} == {placed["orderID"]}
    assert {r.headers["saga-id"] for r in records} == {placed["orderID"]}
    assert len({r.headers["traceparent"].split("-")[1] for r in records}) == 1
    for record in records:
        assert set(record.headers) >= {
            "message-id",
            "message-type",
            "saga-id",
            "causation-id",
            "traceparent",
            "sent-at",
            "schema-version",
        }
    caused = [r.headers["causation-id"] for r in records[1:]]
    assert caused == [r.headers["message-id"] for r in records[:-1]]
