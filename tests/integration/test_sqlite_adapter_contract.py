"""The contract between SQLAlchemy's aiosqlite dialect and ``InlineSqliteConnection``.

The dialect reads private attributes of aiosqlite's connection, which the inline
adapter mimics (``SQLALCHEMY_READS`` in ``ordersaga/db/engine.py``). Here every use the
dialect makes of its driver connection runs against a connection that notes each
private attribute SQLAlchemy's code reads, so an upgrade that reads another one, or no
longer reads one, fails here by name instead of somewhere in a service.
"""

import sqlite3
import sys
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.db.engine import (
    SQLALCHEMY_READS,
    SQLITE_BUSY_TIMEOUT_MS,
    InlineSqliteConnection,
    make_engine,
    sqlite_url,
)

UPGRADE_HINT = (
    "InlineSqliteConnection (src/ordersaga/db/engine.py) mimics what "
    "sqlalchemy/dialects/sqlite/aiosqlite.py reads of aiosqlite's connection: "
    "compare the two and update the adapter and SQLALCHEMY_READS"
)


class NotingConnection(InlineSqliteConnection):
    """Notes the private attributes code of SQLAlchemy reads, present or not."""

    def __init__(self, connection: sqlite3.Connection, noted: set[str]) -> None:
        super().__init__(connection)
        self.noted = noted

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") and not name.startswith("__"):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("sqlalchemy"):
                object.__getattribute__(self, "noted").add(name)
        return super().__getattribute__(name)


def noting_engine(path: Path, noted: set[str]) -> AsyncEngine:
    async def connect() -> NotingConnection:
        raw = sqlite3.connect(
            str(path), timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        return NotingConnection(raw, noted)

    return make_engine(sqlite_url(path), async_creator=connect)


async def driver_isolation_level(conn: AsyncConnection) -> Any:
    """sqlite3's own: None in autocommit, "" (deferred transactions) by default."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection.isolation_level  # type: ignore[union-attr]


async def every_use_of_the_driver_connection(engine: AsyncEngine) -> dict[str, Any]:
    """Connect, commit, roll back, set and reset the isolation level, invalidate, dispose;
    what each observably did."""
    seen: dict[str, Any] = {}
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t VALUES (2)"))
        await conn.rollback()
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        seen["autocommit"] = await driver_isolation_level(autocommit)
        await autocommit.execute(text("INSERT INTO t VALUES (3)"))
    async with engine.connect() as conn:
        seen["after"] = await driver_isolation_level(conn)
        seen["rows"] = sorted((await conn.scalars(text("SELECT a FROM t"))).all())
        await conn.invalidate()
    await engine.dispose()
    return seen


async def test_the_dialect_reads_exactly_the_private_attributes_the_adapter_mimics(
    tmp_path: Path,
) -> None:
    noted: set[str] = set()
    engine = noting_engine(tmp_path / "contract.sqlite3", noted)
    version = sqlalchemy.__version__
    try:
        seen = await every_use_of_the_driver_connection(engine)
    except AttributeError as error:
        missing = getattr(error, "name", None) or str(error)
        raise AssertionError(
            f"SQLAlchemy {version} reads {missing!r} of the SQLite driver connection, which "
            f"InlineSqliteConnection lacks. {UPGRADE_HINT}"
        ) from error

    for name in sorted(noted - SQLALCHEMY_READS):
        raise AssertionError(
            f"SQLAlchemy {version} reads {name!r} of the SQLite driver connection, "
            f"not in SQLALCHEMY_READS. {UPGRADE_HINT}"
        )
    for name in sorted(SQLALCHEMY_READS - noted):
        raise AssertionError(
            f"SQLAlchemy {version} no longer reads {name!r} of the SQLite driver "
            f"connection. {UPGRADE_HINT}"
        )
    assert seen == {"autocommit": None, "after": "", "rows": [1, 3]}


async def test_a_closed_connection_is_neither_committed_nor_rolled_back(
    tmp_path: Path,
) -> None:
    """What the dialect reads ``_connection`` for: a falsy one is a closed connection."""
    engine = make_engine(sqlite_url(tmp_path / "closed.sqlite3"))
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, InlineSqliteConnection)
        await driver.close()
        raw.dbapi_connection.commit()  # type: ignore[union-attr]
        raw.dbapi_connection.rollback()  # type: ignore[union-attr]
        await conn.invalidate()
    await engine.dispose()
