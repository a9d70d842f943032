"""Versioned saga definitions: sagas finish on the version they started on; a process
refuses to start while unfinished sagas need a version it does not register."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    OrderCreated,
    OrderStatusApplied,
    PaymentProcessed,
    ProductReserved,
    WireMessage,
)
from ordersaga.contracts.statuses import OrderStatus, PaymentStatus, StockStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.saga.clock import ProcessClock
from ordersaga.saga.definition import Send
from ordersaga.saga.registry import MissingSagaVersions
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaStatus
from ordersaga.services.orchestrator import wiring
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, order_data
from ordersaga.services.orchestrator.tables import metadata
from tests.shipping import ORDER_SHIPPED, SHIP_ORDER, WITH_SHIPPING, OrderShipped, shipping_runner

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings()
CLOCK = ProcessClock(lambda: NOW)


def v1_only() -> SagaRunner:
    return shipping_runner(SETTINGS, (PLACE_ORDER,), clock=CLOCK)


def v1_and_v2() -> SagaRunner:
    return shipping_runner(SETTINGS, (PLACE_ORDER, WITH_SHIPPING), clock=CLOCK)


def v2_only() -> SagaRunner:
    return shipping_runner(SETTINGS, (WITH_SHIPPING,), clock=CLOCK)


def new_order() -> OrderCreated:
    return OrderCreated(
        orderID=uuid4(),
        userID=1,
        productID=1,
        quantity=1,
        amount=Decimal("20.00"),
        status=OrderStatus.ORDER_CREATED,
    )


async def orchestrator_db(path: Path) -> AsyncEngine:
    engine = make_engine(sqlite_url(path))
    await create_schema(engine, metadata)
    return engine


async def start(engine: AsyncEngine, runner: SagaRunner, order: OrderCreated) -> list[Send]:
    async with engine.begin() as conn:
        return await runner.start(conn, str(order.orderID), order_data(order))


async def reply(
    engine: AsyncEngine, runner: SagaRunner, order: OrderCreated, topic: str, message: WireMessage
) -> list[str]:
    async with engine.begin() as conn:
        sent = await runner.reply(conn, str(order.orderID), topic, message)
    return [t for t, _ in sent]


async def through_payment(
    engine: AsyncEngine, runner: SagaRunner, order: OrderCreated
) -> list[str]:
    """Stock reserved and payment approved: what the saga sends after the pivot."""
    reserved = ProductReserved(
        orderID=order.orderID, userID=1, productID=1, quantity=1, status=StockStatus.AVAILABLE
    )
    await reply(engine, runner, order, topics.PRODUCT_RESERVED, reserved)
    paid = PaymentProcessed(
        orderID=order.orderID,
        userID=1,
        amount=order.amount,
        status=PaymentStatus.PAYMENT_APPROVED,
    )
    return await reply(engine, runner, order, topics.PAYMENT_PROCESSED, paid)


def applied(order: OrderCreated) -> OrderStatusApplied:
    return OrderStatusApplied(orderID=order.orderID, status=OrderStatus.ORDER_COMPLETED)


async def saga_of(engine: AsyncEngine, runner: SagaRunner, order: OrderCreated) -> tuple[int, str]:
    async with engine.connect() as conn:
        stored = await runner.store.get(conn, str(order.orderID))
    assert stored is not None
    return stored.state.definition_version, stored.state.status


async def test_sagas_finish_on_their_version_and_new_ones_start_on_the_newest(
    tmp_path: Path,
) -> None:
    engine = await orchestrator_db(tmp_path / "orchestrator.sqlite3")
    try:
        old_orders = [new_order(), new_order()]
        for order in old_orders:
            await start(engine, v1_only(), order)

        restarted = v1_and_v2()  # v2 the default
        async with engine.connect() as conn:
            await restarted.check_versions(conn)  # v1 is still registered: starts
        assert restarted.definition.version == 2

        # v1 sagas finish as v1: after payment the order is updated, nothing is shipped.
        for order in old_orders:
            assert await through_payment(engine, restarted, order) == [topics.ORDER_UPDATED]
            await reply(engine, restarted, order, topics.ORDER_STATUS_APPLIED, applied(order))
            assert await saga_of(engine, restarted, order) == (1, SagaStatus.COMPLETED)

        # A new saga starts as v2, and ships after payment.
        fresh = new_order()
        await start(engine, restarted, fresh)
        assert await through_payment(engine, restarted, fresh) == [SHIP_ORDER]
        shipped = OrderShipped(orderID=fresh.orderID, shipped=True)
        assert await reply(engine, restarted, fresh, ORDER_SHIPPED, shipped) == [
            topics.ORDER_UPDATED
        ]
        await reply(engine, restarted, fresh, topics.ORDER_STATUS_APPLIED, applied(fresh))
        assert await saga_of(engine, restarted, fresh) == (2, SagaStatus.COMPLETED)
    finally:
        await engine.dispose()


async def test_only_v2_refuses_to_start_while_v1_sagas_are_unfinished(tmp_path: Path) -> None:
    engine = await orchestrator_db(tmp_path / "orchestrator.sqlite3")
    try:
        for _ in range(2):
            await start(engine, v1_only(), new_order())
        finished = new_order()
        await start(engine, v1_only(), finished)
        await through_payment(engine, v1_only(), finished)
        await reply(engine, v1_only(), finished, topics.ORDER_STATUS_APPLIED, applied(finished))

        with pytest.raises(MissingSagaVersions) as refused:
            await wiring.check_saga_versions(v2_only(), engine)
    finally:
        await engine.dispose()
    message = str(refused.value)
    assert "2 unfinished place-order sagas of version 1" in message
    assert refused.value.missing == {1: 2}


async def test_the_embedded_system_refuses_to_start_without_a_version_its_sagas_need(
    tmp_path: Path,
) -> None:
    engine = await orchestrator_db(tmp_path / "orchestrator.sqlite3")
    try:
        await start(engine, v1_only(), new_order())
    finally:
        await engine.dispose()
    specs = {"orchestrator": wiring.spec(SETTINGS, v2_only())}
    system = EmbeddedSystem(tmp_path, SETTINGS, specs=specs)

    with pytest.raises(MissingSagaVersions, match="1 unfinished place-order saga of version 1"):
        await system.start()

    # With v1 registered again it starts.
    specs = {"orchestrator": wiring.spec(SETTINGS, v1_and_v2())}
    async with EmbeddedSystem(tmp_path, SETTINGS, specs=specs) as started:
        assert started.endpoints["orchestrator"] is not None
