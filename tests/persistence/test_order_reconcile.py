"""Reconciling orders left ORDER_CREATED, on every backend (MariaDB is where it runs)."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import topics
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.order import repository
from ordersaga.services.order.model import Order
from ordersaga.services.order.reconcile import reconcile_stale_orders
from ordersaga.services.order.tables import orders, outbox
from tests.persistence.conftest import Databases

START = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
WINDOW = 60.0


def an_order(created_at: datetime, status: OrderStatus = OrderStatus.ORDER_CREATED) -> Order:
    return Order(
        id=uuid4(),
        user_id=1,
        product_id=2,
        quantity=1,
        amount=Decimal("30.00"),
        status=status,
        reason=None,
        created_at=created_at,
        updated_at=created_at,
    )


async def stored(engine: AsyncEngine, *items: Order) -> None:
    async with engine.begin() as conn:
        for order in items:
            await repository.insert_orders(conn, [(order, None)])


async def published(engine: AsyncEngine) -> list[str]:
    """The keys of the order-created messages in the outbox, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.topic, outbox.c.message_key).order_by(outbox.c.id)
        )
    found = list(rows)
    assert {r.topic for r in found} <= {topics.ORDER_CREATED}
    return [r.message_key for r in found]


async def reconcile(engine: AsyncEngine, seconds: float, batch: int = 50) -> int:
    at = START + timedelta(seconds=seconds)
    return await reconcile_stale_orders(
        Transactions(engine, outbox), after=WINDOW, now=at, batch=batch
    )


async def test_only_orders_left_created_past_the_window_are_published_again(
    db: Databases,
) -> None:
    engine = await db.fresh("order")
    stale = an_order(START)
    young = an_order(START + timedelta(seconds=30))
    done = an_order(START, OrderStatus.ORDER_COMPLETED)
    await stored(engine, stale, young, done)

    assert await reconcile(engine, 70) == 1

    assert await published(engine) == [str(stale.id)]
    async with engine.connect() as conn:
        after = await repository.get_order(conn, stale.id)
        reconciled = await conn.scalar(
            select(orders.c.reconciled_at).where(orders.c.id == str(stale.id))
        )
    assert after is not None and after.updated_at == stale.updated_at  # the bench's clock
    assert reconciled == START + timedelta(seconds=70)


async def test_an_order_is_published_again_once_per_window(db: Databases) -> None:
    engine = await db.fresh("order")
    order = an_order(START)
    await stored(engine, order)

    ticks = [await reconcile(engine, seconds) for seconds in (61, 62, 90, 121, 122)]

    assert ticks == [1, 0, 0, 1, 0]
    assert await published(engine) == [str(order.id)] * 2


async def test_the_oldest_go_first_in_small_batches(db: Databases) -> None:
    engine = await db.fresh("order")
    made = [an_order(START + timedelta(seconds=i)) for i in range(5)]
    await stored(engine, *reversed(made))

    assert [await reconcile(engine, 100, batch=2) for _ in range(4)] == [2, 2, 1, 0]

    assert await published(engine) == [str(o.id) for o in made]


async def test_replicas_scanning_at_once_publish_each_order_once(db: Databases) -> None:
    engines = db.engines("order", 4)
    engine = await db.fresh("order")
    made = [an_order(START + timedelta(seconds=i)) for i in range(12)]
    await stored(engine, *made)

    # On SQLite the single writer serialises them; elsewhere rows locked are skipped.
    done = await asyncio.gather(*(reconcile(e, 100, batch=5) for e in engines))
    done.append(await reconcile(engine, 100, batch=20))

    assert sum(done) == 12
    assert sorted(await published(engine)) == sorted(str(o.id) for o in made)
