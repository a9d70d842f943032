"""Concurrent POSTs placed together: each gets its own answer, one's refusal fails no other."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import topics
from ordersaga.services.order import repository
from ordersaga.services.order.catalog import CatalogCache
from ordersaga.services.order.group_commit import GroupCommit
from ordersaga.services.order.model import (
    IdempotencyKeyReused,
    OrderRequest,
    Placement,
    UnknownProduct,
)
from ordersaga.services.order.placing import Ask, place_order
from ordersaga.services.order.tables import orders, outbox, products
from tests.support import order_units, seeded_order_database


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with seeded_order_database(tmp_path / "order.sqlite3") as engine:
        yield engine


def ask(product: int = 1, quantity: int = 1, key: str | None = None, user: int = 1) -> Ask:
    return Ask(OrderRequest(user_id=user, product_id=product, quantity=quantity), key)


async def counted(engine: AsyncEngine) -> tuple[int, int]:
    """Orders stored, and order-created messages in the outbox."""
    async with engine.connect() as conn:
        made = await conn.scalar(select(func.count()).select_from(orders))
        sent = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.topic == topics.ORDER_CREATED)
        )
    return int(made or 0), int(sent or 0)


async def test_concurrent_asks_get_their_own_answers(engine: AsyncEngine) -> None:
    wakes: list[None] = []
    placing = GroupCommit(order_units(engine, lambda: wakes.append(None)), CatalogCache(engine))
    first = await placing.place(ask(key="used"))
    asks = [
        ask(product=1, quantity=2),
        ask(product=99),
        ask(product=2, key="used"),  # the key's order was for product 1
        ask(product=1, key="used"),  # a replay
        ask(product=3, key="new"),
        ask(product=3, key="new"),  # the same key twice in one batch: one order
        ask(product=2, quantity=3, user=2),
    ]

    results = await asyncio.gather(*(placing.place(a) for a in asks), return_exceptions=True)

    placed = [r for r in results if isinstance(r, Placement)]
    assert [type(r) for r in results] == [
        Placement,
        UnknownProduct,
        IdempotencyKeyReused,
        Placement,
        Placement,
        Placement,
        Placement,
    ]
    assert [p.created for p in placed] == [True, False, True, False, True]
    assert placed[1].order == first.order
    assert placed[3].order == placed[2].order
    assert [p.order.amount for p in placed] == [
        Decimal("40.00"),
        Decimal("20.00"),
        Decimal("50.00"),
        Decimal("50.00"),
        Decimal("90.00"),
    ]
    assert await counted(engine) == (4, 4)
    assert len(wakes) == 2  # one commit for the first ask, one for the seven together


async def test_a_key_committed_meanwhile_fails_no_other_order(engine: AsyncEngine) -> None:
    units = order_units(engine)
    catalog = CatalogCache(engine)
    # Committed by "another replica" after the batch read its keys: the batch's insert
    # fails on the unique key, and each order is placed on its own.
    raced = await place_order(
        units, OrderRequest(user_id=1, product_id=2, quantity=1), idempotency_key="raced"
    )
    real = repository.orders_by_idempotency_keys
    reads = []

    async def stale_read(conn, keys):  # type: ignore[no-untyped-def]
        """The batch's read misses "raced"; reads after it see it."""
        reads.append(keys)
        found = await real(conn, keys)
        return {k: o for k, o in found.items() if k != "raced" or len(reads) > 1}

    placing = GroupCommit(units, catalog)
    batch_reads = pytest.MonkeyPatch()
    batch_reads.setattr(repository, "orders_by_idempotency_keys", stale_read)
    try:
        again, other, refused = await asyncio.gather(
            placing.place(ask(product=2, key="raced")),
            placing.place(ask(product=1, quantity=2)),
            placing.place(ask(product=1, key="raced")),
            return_exceptions=True,
        )
    finally:
        batch_reads.undo()

    assert isinstance(again, Placement) and not again.created
    assert again.order == raced.order
    assert isinstance(other, Placement) and other.created
    assert isinstance(refused, IdempotencyKeyReused)
    assert await counted(engine) == (2, 2)
    assert len(reads) > 1  # the batch's insert failed, each order went alone


async def test_a_product_added_later_is_orderable_at_once(engine: AsyncEngine) -> None:
    catalog = CatalogCache(engine, fresh_for=3600.0)
    placing = GroupCommit(order_units(engine), catalog)
    with pytest.raises(UnknownProduct):
        await placing.place(ask(product=7))
    async with engine.begin() as conn:
        await conn.execute(insert(products).values(id=7, name="new", price=Decimal("7.50")))

    placement = await placing.place(ask(product=7, quantity=2))

    assert placement.order.amount == Decimal("15.00")


async def test_a_price_changed_is_charged_once_the_catalog_is_stale(engine: AsyncEngine) -> None:
    now = [0.0]
    placing = GroupCommit(order_units(engine), CatalogCache(engine, 5.0, lambda: now[0]))
    assert (await placing.place(ask(product=1))).order.amount == Decimal("20.00")
    async with engine.begin() as conn:
        await conn.execute(products.update().where(products.c.id == 1).values(price=21))

    cached = await placing.place(ask(product=1))
    now[0] = 5.0
    fresh = await placing.place(ask(product=1))

    assert (cached.order.amount, fresh.order.amount) == (Decimal("20.00"), Decimal("21.00"))
