"""The asyncpg route of a transaction: the same transaction, and SQLAlchemy's errors."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ordersaga.db.driver import postgres
from ordersaga.messaging.transient import is_transient
from ordersaga.services.stock.tables import stock
from tests.persistence.conftest import Databases
from tests.persistence.support import count


async def test_only_postgresql_has_the_asyncpg_route(db: Databases) -> None:
    engine = await db.fresh("stock")

    async with engine.begin() as conn:
        route = await postgres(conn)

    assert (route is not None) == (db.backend == "postgresql")


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_route_works_in_the_transaction_sqlalchemy_opened(db: Databases) -> None:
    engine = await db.fresh("stock")
    before = await count(engine, stock)

    async with engine.connect() as conn:
        pg = await postgres(conn)
        assert pg is not None
        await pg.execute("INSERT INTO stock VALUES ($1, $2, $2)", 9001, 5)
        seen = await conn.scalar(select(stock.c.quantity).where(stock.c.product_id == 9001))
        await conn.rollback()

    assert seen == 5
    assert await count(engine, stock) == before


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_broken_constraint_is_an_integrity_error_and_not_transient(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")

    with pytest.raises(IntegrityError) as refusal:
        async with engine.begin() as conn:
            pg = await postgres(conn)
            assert pg is not None
            await pg.execute("UPDATE stock SET quantity = -1 WHERE product_id = $1", 1)

    assert not is_transient(refusal.value)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_lock_timeout_is_transient(db: Databases) -> None:
    engine = await db.fresh("stock")

    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE stock IN EXCLUSIVE MODE"))
        with pytest.raises(DBAPIError) as waited:
            async with db.engine("stock").begin() as conn:
                pg = await postgres(conn)
                assert pg is not None
                await pg.value("SELECT set_config('lock_timeout', '200ms', true)")
                await pg.execute("UPDATE stock SET quantity = 0 WHERE product_id = $1", 1)
        await holder.rollback()

    assert waited.value.orig is not None
    assert is_transient(waited.value)
