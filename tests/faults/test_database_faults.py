"""The database faults are the errors the drivers raise, and do what they say."""

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.db.driver import driver
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from tests.driver_errors import CATALOG, DbFault, Dialects, Phase
from tests.faults.faulty_engine import DatabaseFaults, DbFaultPlan
from tests.faults.injector import FaultLog

FAULTS = {fault.kind: fault for fault in CATALOG}

metadata = MetaData()
rows = Table("rows", metadata, Column("id", Integer, primary_key=True))


def built(kind: str) -> Exception:
    return FAULTS[kind].build(Dialects(), "SELECT 1")


@pytest.mark.parametrize(
    "kind", [k for k in FAULTS if k.startswith("pg-") and "closed" not in k and "lost" not in k]
)
def test_a_postgres_fault_carries_its_sqlstate_as_asyncpg_reports_it(kind: str) -> None:
    error = built(kind)
    assert isinstance(error, DBAPIError)
    assert error.orig is not None
    assert getattr(error.orig, "sqlstate", None) == kind.removeprefix("pg-")
    assert getattr(error.orig, "pgcode", None) == kind.removeprefix("pg-")
    assert getattr(error.orig.__cause__, "sqlstate", None) == kind.removeprefix("pg-")


@pytest.mark.parametrize("kind", [k for k in FAULTS if k.startswith("mysql-") and "lost" not in k])
def test_a_mysql_fault_is_an_operational_error_with_its_code_first(kind: str) -> None:
    error = built(kind)
    assert isinstance(error, OperationalError)
    assert error.orig is not None
    assert error.orig.args[0] == int(kind.removeprefix("mysql-"))


def test_sqlite_busy_is_database_is_locked() -> None:
    error = built("sqlite-busy")
    assert isinstance(error, OperationalError)
    assert str(error.orig) == "database is locked"
    assert getattr(error.orig, "sqlite_errorname", None) == "SQLITE_BUSY"


def test_a_pool_timeout_is_sqlalchemys_own_and_not_a_driver_error() -> None:
    error = built("pool-timeout")
    assert isinstance(error, PoolTimeoutError)
    assert not isinstance(error, DBAPIError)


def test_a_dropped_connection_is_reported_invalidated() -> None:
    dropped = [f for f in CATALOG if f.drops_connection]
    assert {f.phase for f in dropped} == {Phase.DROP, Phase.COMMIT}
    for fault in dropped:
        error = built(fault.kind)
        assert isinstance(error, DBAPIError), fault.kind
        assert error.connection_invalidated, fault.kind
    assert isinstance(built("pg-commit-lost"), DBAPIError)
    assert not isinstance(built("pg-commit-lost"), InterfaceError | OperationalError)
    assert built("pg-commit-lost").orig.sqlstate == "08003"


def always(**rates: float) -> DbFaultPlan:
    plan = dict(checkout=0.0, statement=0.0, drop=0.0, commit_lost=0.0) | rates
    return DbFaultPlan(
        begins=0.0,
        lasts=3600.0,
        outage=None,
        outage_begins=0.0,
        outage_lasts=0.0,
        **plan,
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    real = make_engine(sqlite_url(tmp_path / "faults.sqlite3"))
    await create_schema(real, metadata)
    yield real
    await real.dispose()


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(rows)) or 0)


async def test_a_lost_commit_answer_fails_the_caller_but_the_row_is_committed(
    engine: AsyncEngine,
) -> None:
    log = FaultLog()
    faulty = DatabaseFaults(random.Random(1), always(commit_lost=1.0), log).wrap("stock", engine)
    with pytest.raises(DBAPIError) as raised:
        async with faulty.begin() as conn:
            await conn.execute(insert(rows).values(id=1))
    assert raised.value.connection_invalidated
    assert await count(engine) == 1
    assert sum(log.counts.values()) == 1
    assert set(log.places) == {"stock api"}


async def test_a_connection_dropped_mid_transaction_loses_the_transaction_not_the_pool(
    engine: AsyncEngine,
) -> None:
    faults = DatabaseFaults(random.Random(2), always(drop=1.0), FaultLog())
    faulty = faults.wrap("payment", engine)
    with pytest.raises(DBAPIError) as raised:
        async with faulty.begin() as conn:
            await conn.execute(insert(rows).values(id=1))
    assert raised.value.connection_invalidated
    assert await count(engine) == 0
    async with engine.begin() as conn:  # the pool opens a new connection
        await conn.execute(insert(rows).values(id=2))
    assert await count(engine) == 1


async def test_a_statement_on_the_driver_route_meets_the_faults_too(engine: AsyncEngine) -> None:
    log = FaultLog()
    faulty = DatabaseFaults(random.Random(5), always(statement=1.0), log).wrap("stock", engine)
    with pytest.raises(DBAPIError) as raised:
        async with faulty.begin() as conn:
            db = await driver(conn)
            assert db is not None
            await db.execute_many("INSERT INTO rows (id) VALUES ($1)", [(1,), (2,)])
    assert "INSERT INTO rows" in str(raised.value)
    assert sum(log.places.values()) == 1  # one statement, one fault asked for
    assert await count(engine) == 0
    async with engine.begin() as conn:  # the plain engine's route is left alone
        db = await driver(conn)
        assert db is not None
        await db.execute("INSERT INTO rows (id) VALUES ($1)", 3)
    assert await count(engine) == 1


async def test_outside_its_window_the_engine_works(engine: AsyncEngine) -> None:
    plan = DbFaultPlan(
        begins=3600.0,
        lasts=1.0,
        checkout=1.0,
        statement=1.0,
        drop=1.0,
        commit_lost=1.0,
        outage="order",
        outage_begins=3600.0,
        outage_lasts=1.0,
    )
    log = FaultLog()
    faulty = DatabaseFaults(random.Random(3), plan, log).wrap("order", engine)
    async with faulty.begin() as conn:
        await conn.execute(insert(rows).values(id=1))
    assert await count(faulty) == 1
    assert not log.counts


async def test_an_outage_refuses_every_checkout_of_its_service_only(engine: AsyncEngine) -> None:
    plan = DbFaultPlan(
        begins=0.0,
        lasts=0.0,
        checkout=0.0,
        statement=0.0,
        drop=0.0,
        commit_lost=0.0,
        outage="order",
        outage_begins=0.0,
        outage_lasts=3600.0,
    )
    faults = DatabaseFaults(random.Random(4), plan, FaultLog())
    for _ in range(3):
        with pytest.raises(PoolTimeoutError):
            async with faults.wrap("order", engine).connect():
                pass
    assert await count(faults.wrap("stock", engine)) == 0


def test_every_phase_has_faults() -> None:
    by_phase: dict[Phase, list[DbFault]] = {}
    for fault in CATALOG:
        by_phase.setdefault(fault.phase, []).append(fault)
    assert set(by_phase) == set(Phase)
