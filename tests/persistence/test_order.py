"""The order service's persistence on every backend (MariaDB is where it runs)."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.statuses import OrderStatus
from ordersaga.services.order import repository
from ordersaga.services.order.model import (
    IdempotencyKeyReused,
    Order,
    OrderRequest,
    Placement,
)
from ordersaga.services.order.placing import place_order
from ordersaga.services.order.repository import OrderFilter
from ordersaga.services.order.tables import orders, outbox
from tests.persistence.conftest import Databases
from tests.persistence.support import count
from tests.support import order_units

MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))


def an_order(created_at: datetime = MOMENT) -> Order:
    return Order(
        id=uuid4(),
        user_id=1,
        product_id=2,
        quantity=1,
        amount=Decimal("30.00"),
        status=OrderStatus.ORDER_CREATED,
        reason=None,
        created_at=created_at,
        updated_at=created_at,
    )


async def stored(engine: AsyncEngine, *items: Order) -> None:
    async with engine.begin() as conn:
        for order in items:
            await repository.insert_orders(conn, [(order, None)])


async def place(engine: AsyncEngine, request: OrderRequest, key: str | None) -> Placement:
    return await place_order(order_units(engine), request, idempotency_key=key)


async def test_concurrent_requests_with_one_idempotency_key_make_one_order(
    db: Databases,
) -> None:
    await db.fresh("order")
    engines = db.engines("order", 6)
    request = OrderRequest(user_id=1, product_id=2, quantity=3)

    placements = await asyncio.gather(*(place(e, request, "key-1") for e in engines))

    assert len({p.order.id for p in placements}) == 1
    assert [p.created for p in placements].count(True) == 1
    assert placements[0].order.amount == Decimal("90.00")
    assert await count(engines[0], orders) == 1
    assert await count(engines[0], outbox) == 1


async def test_an_idempotency_key_never_changes_meaning(db: Databases) -> None:
    engine = await db.fresh("order")
    await place(engine, OrderRequest(user_id=1, product_id=2, quantity=1), "key-1")

    with pytest.raises(IdempotencyKeyReused):
        await place(engine, OrderRequest(user_id=1, product_id=2, quantity=2), "key-1")

    assert await count(engine, orders) == 1


async def test_timestamps_keep_their_microseconds_and_come_back_in_utc(db: Databases) -> None:
    engine = await db.fresh("order")
    order = an_order()

    await stored(engine, order)

    async with engine.connect() as conn:
        found = await repository.get_order(conn, order.id)
    assert found is not None
    assert found.created_at == MOMENT
    assert found.created_at.microsecond == 123456
    assert found.created_at.tzinfo == UTC


async def test_orders_a_microsecond_apart_list_newest_first(db: Databases) -> None:
    engine = await db.fresh("order")
    older = an_order(MOMENT)
    newer = an_order(MOMENT + timedelta(microseconds=1))
    await stored(engine, newer, older)

    async with engine.connect() as conn:
        listed, total = await repository.list_orders(conn, OrderFilter(), limit=10, offset=0)

    assert [o.id for o in listed] == [newer.id, older.id]
    assert total == 2


async def test_of_two_racing_final_statuses_exactly_one_wins(db: Databases) -> None:
    await db.fresh("order")
    order = an_order()
    first, second = db.engines("order", 2)
    await stored(first, order)

    async def finish(engine: AsyncEngine, status: OrderStatus) -> bool:
        async with engine.begin() as conn:
            moved = await repository.finish_orders(
                conn, {order.id: (status, None)}, datetime.now(UTC)
            )
        return moved == 1

    results = await asyncio.gather(
        finish(first, OrderStatus.ORDER_COMPLETED), finish(second, OrderStatus.ORDER_CANCELLED)
    )

    assert sorted(results) == [False, True]
    async with first.connect() as conn:
        final = await repository.order_status(conn, order.id)
    winner = OrderStatus.ORDER_COMPLETED if results[0] else OrderStatus.ORDER_CANCELLED
    assert final is winner
