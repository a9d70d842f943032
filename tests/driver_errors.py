"""Database errors as the application sees them: raised by the real driver, wrapped by
SQLAlchemy's dialect for that driver.

Each :class:`DbFault` builds the exception a service would get from asyncpg
(PostgreSQL), aiomysql (MariaDB/MySQL) or aiosqlite, whatever database the in-process
system really runs on: the driver's own exception class with the attribute it sets
(asyncpg's class-level ``sqlstate``, which SQLAlchemy's asyncpg adapter copies to
``sqlstate``/``pgcode`` of its translated error; PyMySQL's ``args[0]`` error code;
sqlite3's message and ``sqlite_errorcode``), wrapped by ``DBAPIError.instance`` with the
dialect's exception base, as SQLAlchemy does, so the class is OperationalError,
InterfaceError, InternalError or a plain DBAPIError exactly as in production.
"""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import asyncpg.exceptions as pg
import pymysql.err
from sqlalchemy import exc
from sqlalchemy.dialects.mysql.aiomysql import MySQLDialect_aiomysql
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    PGDialect_asyncpg,
)
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Dialect


class Phase(Enum):
    """Where a fault strikes."""

    CHECKOUT = "checkout"
    """Taking a connection from the pool (or opening one)."""
    STATEMENT = "statement"
    """A statement inside a transaction; the connection survives."""
    DROP = "drop"
    """A statement inside a transaction; the server closed the connection."""
    COMMIT = "commit"
    """After the commit went through: its answer never arrived."""


class Dialects:
    """SQLAlchemy's dialects for the three drivers, with their DBAPI modules loaded."""

    def __init__(self) -> None:
        self.postgres: Dialect = PGDialect_asyncpg(dbapi=PGDialect_asyncpg.import_dbapi())
        self.mysql: Dialect = MySQLDialect_aiomysql(dbapi=MySQLDialect_aiomysql.import_dbapi())
        self.sqlite: Dialect = SQLiteDialect_aiosqlite(dbapi=SQLiteDialect_aiosqlite.import_dbapi())


def _wrapped(
    dialect: Dialect, driver_error: Exception, statement: str | None, dropped: bool
) -> Exception:
    """``driver_error`` as SQLAlchemy raises it from a connection of ``dialect``.

    ``dropped``: the connection is gone, which the dialect learns from the connection
    itself (asyncpg's ``is_closed()``) rather than from the error, so it is given here.
    """
    invalidated = dropped or dialect.is_disconnect(driver_error, None, None)
    wrapped = exc.DBAPIError.instance(
        statement,
        None,
        driver_error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
    wrapped.__cause__ = driver_error
    return wrapped


def _asyncpg(dialect: Dialect, error: pg.PostgresError) -> Exception:
    """What SQLAlchemy's asyncpg adapter makes of ``error`` (its translated DBAPI error)."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dialect.loaded_dbapi, error)
    except Exception as translated:
        return translated
    raise AssertionError("the asyncpg adapter did not raise")


Builder = Callable[[Dialects, str | None], Exception]


def postgres(error: type[pg.PostgresError], message: str, *, dropped: bool = False) -> Builder:
    def build(dialects: Dialects, statement: str | None) -> Exception:
        translated = _asyncpg(dialects.postgres, error(message))
        return _wrapped(dialects.postgres, translated, statement, dropped)

    return build


def mysql(code: int, message: str) -> Builder:
    """As PyMySQL (under aiomysql) raises server error ``code`` or a client error (2xxx)."""

    def build(dialects: Dialects, statement: str | None) -> Exception:
        fallback = pymysql.err.InternalError if code < 1000 else pymysql.err.OperationalError
        error_class: Any = pymysql.err.error_map.get(code, fallback)
        return _wrapped(dialects.mysql, error_class(code, message), statement, False)

    return build


def sqlite_busy(dialects: Dialects, statement: str | None) -> Exception:
    error = sqlite3.OperationalError("database is locked")
    # Set by sqlite3 itself on the errors it raises (Python 3.11+).
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    error.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    return _wrapped(dialects.sqlite, error, statement, False)


def pool_timeout(_dialects: Dialects, _statement: str | None) -> Exception:
    """As ``QueuePool`` raises when no connection came back within ``pool_timeout``."""
    return exc.TimeoutError(
        "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 1.00",
        code="3o7r",
    )


@dataclass(frozen=True)
class DbFault:
    kind: str
    phase: Phase
    build: Builder

    @property
    def drops_connection(self) -> bool:
        return self.phase in (Phase.DROP, Phase.COMMIT)


_CLOSED = "connection was closed in the middle of operation"

CATALOG: tuple[DbFault, ...] = (
    DbFault("pool-timeout", Phase.CHECKOUT, pool_timeout),
    DbFault(
        "pg-53300",
        Phase.CHECKOUT,
        postgres(pg.TooManyConnectionsError, "sorry, too many clients already"),
    ),
    DbFault(
        "pg-57P03",
        Phase.CHECKOUT,
        postgres(pg.CannotConnectNowError, "the database system is starting up"),
    ),
    DbFault(
        "pg-55000",
        Phase.CHECKOUT,
        postgres(
            pg.ObjectNotInPrerequisiteStateError,
            'database "ordersaga" is not currently accepting connections',
        ),
    ),
    DbFault("mysql-1040", Phase.CHECKOUT, mysql(1040, "Too many connections")),
    DbFault("pg-53200", Phase.STATEMENT, postgres(pg.OutOfMemoryError, "out of memory")),
    DbFault(
        "pg-55P03",
        Phase.STATEMENT,
        postgres(pg.LockNotAvailableError, "canceling statement due to lock timeout"),
    ),
    DbFault(
        "pg-57014",
        Phase.STATEMENT,
        postgres(pg.QueryCanceledError, "canceling statement due to statement timeout"),
    ),
    DbFault(
        "pg-40001",
        Phase.STATEMENT,
        postgres(pg.SerializationError, "could not serialize access due to concurrent update"),
    ),
    DbFault("pg-40P01", Phase.STATEMENT, postgres(pg.DeadlockDetectedError, "deadlock detected")),
    DbFault(
        "mysql-1205",
        Phase.STATEMENT,
        mysql(1205, "Lock wait timeout exceeded; try restarting transaction"),
    ),
    DbFault(
        "mysql-1213",
        Phase.STATEMENT,
        mysql(1213, "Deadlock found when trying to get lock; try restarting transaction"),
    ),
    DbFault("sqlite-busy", Phase.STATEMENT, sqlite_busy),
    DbFault(
        "pg-25P03",
        Phase.DROP,
        postgres(
            pg.IdleInTransactionSessionTimeoutError,
            "terminating connection due to idle-in-transaction timeout",
            dropped=True,
        ),
    ),
    DbFault(
        "pg-57P01",
        Phase.DROP,
        postgres(
            pg.AdminShutdownError,
            "terminating connection due to administrator command",
            dropped=True,
        ),
    ),
    DbFault(
        "pg-connection-closed",
        Phase.DROP,
        postgres(pg.ConnectionDoesNotExistError, _CLOSED, dropped=True),
    ),
    DbFault("mysql-2006", Phase.DROP, mysql(2006, "MySQL server has gone away")),
    DbFault("mysql-2013", Phase.DROP, mysql(2013, "Lost connection to MySQL server during query")),
    DbFault(
        "pg-commit-lost",
        Phase.COMMIT,
        postgres(pg.ConnectionDoesNotExistError, _CLOSED, dropped=True),
    ),
    DbFault(
        "mysql-commit-lost",
        Phase.COMMIT,
        mysql(2013, "Lost connection to MySQL server during query"),
    ),
)


def of_phase(phase: Phase) -> tuple[DbFault, ...]:
    return tuple(fault for fault in CATALOG if fault.phase is phase)
