"""The driver route of a transaction (asyncpg, sqlite3): the same transaction, the
values SQLAlchemy reads and writes, and SQLAlchemy's errors."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ordersaga.db.driver import driver, insert_sql, postgres
from ordersaga.messaging.transient import is_transient
from ordersaga.services.payment.tables import balances, payments
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


async def test_only_mariadb_has_no_driver_route(db: Databases) -> None:
    engine = await db.fresh("stock")

    async with engine.begin() as conn:
        route = await driver(conn)

    assert (route is None) == (db.backend == "mariadb")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_a_broken_constraint_is_an_integrity_error_and_not_transient(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")

    with pytest.raises(IntegrityError) as refusal:
        async with engine.begin() as conn:
            route = await driver(conn)
            assert route is not None
            await route.execute("UPDATE stock SET quantity = -1 WHERE product_id = $1", 1)

    assert not is_transient(refusal.value)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_the_route_writes_and_reads_money_and_times_as_sqlalchemy_does(
    db: Databases,
) -> None:
    engine = await db.fresh("payment")
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    written = {
        "order_id": "driver-route-1",
        "user_id": 1,
        "amount": Decimal("1234.56"),
        "status": "APPROVED",
        "reason": None,
        "created_at": at,
        "updated_at": at,
    }
    by_sqlalchemy = {**written, "order_id": "driver-route-2", "amount": Decimal("0.07")}
    find = f"SELECT {', '.join(payments.c.keys())} FROM payments WHERE order_id = ANY($1)"

    async with engine.begin() as conn:
        await conn.execute(insert(payments), [by_sqlalchemy])
        route = await driver(conn)
        assert route is not None
        values = tuple(route.bind(payments.c[k].type, v) for k, v in written.items())
        await route.execute_many(insert_sql(payments, written), [values])
        # Both rows, the route's and SQLAlchemy's, read through the route.
        ids = ["driver-route-1", "driver-route-2"]
        read = await route.fetch_rows(find, payments, ids)
        taken = route.bind(balances.c.balance.type, Decimal("0.01"))
        await route.execute(
            "UPDATE balances SET balance = balance - $2 WHERE user_id = $1", 1, taken
        )
        has = route.read(
            balances.c.balance.type,
            await route.value("SELECT balance FROM balances WHERE user_id = $1", 1),
        )
        stored = await conn.execute(select(payments).where(payments.c.order_id.in_(ids)))
        stored_rows = {row.order_id: dict(row._mapping) for row in stored}
        balance = await conn.scalar(select(balances.c.balance).where(balances.c.user_id == 1))

    # What the route wrote reads back through SQLAlchemy as what SQLAlchemy wrote does,
    # and the route reads both rows as SQLAlchemy does.
    ours, theirs = stored_rows["driver-route-1"], stored_rows["driver-route-2"]
    assert ours["amount"] == Decimal("1234.56")
    assert theirs["amount"] == Decimal("0.07")
    assert ours | {"order_id": "", "amount": 0} == theirs | {"order_id": "", "amount": 0}
    assert {r["order_id"]: dict(r) for r in read} == stored_rows
    assert has == balance
    assert isinstance(has, Decimal)


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
