"""The migrations create exactly the tables of each service's metadata, on every backend."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, MetaData, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from ordersaga.config import SAMPLE_BALANCES, SAMPLE_PRICES, SAMPLE_STOCK
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.db.migrate import SchemaNotCurrent, current_revision, head_revision, seed, upgrade
from ordersaga.services.order.tables import products
from ordersaga.services.payment.tables import balances
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.services.registry import service as service_
from ordersaga.services.stock.tables import stock
from tests.persistence.conftest import METADATA, Databases
from tests.persistence.servers import BACKENDS, create_scratch, scratch_names, server

EVERY_PAIR = [(b, s) for b in BACKENDS for s in SERVICE_NAMES]
# Where each service runs in production, and SQLite, where the embedded mode runs them all.
DEPLOYED = [
    ("sqlite", "order"),
    ("sqlite", "orchestrator"),
    ("sqlite", "stock"),
    ("sqlite", "payment"),
    ("mariadb", "order"),
    ("postgresql", "orchestrator"),
    ("postgresql", "stock"),
    ("postgresql", "payment"),
]


def differences(conn: Connection, metadata: MetaData) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


def check_constraints(conn: Connection) -> dict[str, set[str]]:
    inspector = inspect(conn)
    return {
        table: {c["name"] for c in inspector.get_check_constraints(table) if c["name"]}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def declared_checks(metadata: MetaData) -> dict[str, set[str]]:
    return {
        table.name: {
            str(c.name) for c in table.constraints if isinstance(c, CheckConstraint) and c.name
        }
        for table in metadata.sorted_tables
    }


async def schema_report(url: str, metadata: MetaData) -> tuple[list[object], dict[str, set[str]]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences, metadata)
            checks = await conn.run_sync(check_constraints)
    finally:
        await engine.dispose()
    return diff, checks


@pytest.mark.parametrize(("backend", "service"), EVERY_PAIR)
async def test_the_migrated_schema_is_exactly_the_metadata(
    urls: dict[str, str], service: str
) -> None:
    diff, checks = await schema_report(urls[service], METADATA[service])

    assert diff == []
    assert checks == declared_checks(METADATA[service])
    assert await current_revision(urls[service]) == head_revision(service_(service))


@pytest.fixture
async def empty_url(backend: str, service: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, with no tables at all."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / f"{service}.sqlite3")
        return
    found = server(backend)
    names = scratch_names(backend, [service])
    await asyncio.to_thread(create_scratch, found, names.values())
    try:
        yield found.url(names[service])
    finally:
        await found.drop(names.values())


@pytest.mark.parametrize(("backend", "service"), DEPLOYED)
async def test_upgrade_is_idempotent_even_when_replicas_run_it_at_once(
    empty_url: str, service: str
) -> None:
    # A new SQLite file switches to WAL on its first connection; two first connections
    # at once may find it locked (SQLite does not wait for that lock), so open it first.
    assert await current_revision(empty_url) is None
    schema = service_(service)
    await asyncio.gather(upgrade(schema, empty_url), upgrade(schema, empty_url))
    await upgrade(schema, empty_url)

    diff, _ = await schema_report(empty_url, METADATA[service])
    assert diff == []
    assert await current_revision(empty_url) == head_revision(schema)


@pytest.mark.parametrize(("backend", "service"), [("sqlite", "stock")])
async def test_seed_refuses_a_database_that_was_never_upgraded(
    empty_url: str, service: str
) -> None:
    with pytest.raises(SchemaNotCurrent, match=r"run `ordersaga db upgrade stock` first"):
        await seed(service_(service), empty_url)


async def rows(engine: AsyncEngine, query: Select[Any]) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(query)]


async def test_seed_loads_the_sample_data_into_empty_tables_once(db: Databases) -> None:
    engines = {s: await db.fresh(s, seeded=False) for s in ("order", "stock", "payment")}

    for _ in range(2):
        await asyncio.gather(*(seed(service_(s), db.urls[s]) for s in SERVICE_NAMES))

    assert await rows(
        engines["order"],
        select(products.c.id, products.c.name, products.c.price).order_by(products.c.id),
    ) == [(pid, name, price) for pid, (name, price) in sorted(SAMPLE_PRICES.items())]
    assert await rows(
        engines["stock"],
        select(stock.c.product_id, stock.c.quantity).order_by(stock.c.product_id),
    ) == sorted(SAMPLE_STOCK.items())
    assert await rows(
        engines["payment"],
        select(balances.c.user_id, balances.c.balance).order_by(balances.c.user_id),
    ) == sorted(SAMPLE_BALANCES.items())


async def test_seed_leaves_tables_that_have_data_alone(db: Databases) -> None:
    engine = await db.fresh("stock", seeded=False)
    async with engine.begin() as conn:
        await conn.execute(stock.insert().values(product_id=7, quantity=1, initial_quantity=1))

    await seed(service_("stock"), db.urls["stock"])

    assert await rows(engine, select(func.count()).select_from(stock)) == [(1,)]
