"""Exceptions as the database drivers raise them through SQLAlchemy, by kind of fault.

None of them is the message's fault: the consumer loop retries every one. Each is built
as the real stack builds it: the driver's exception (asyncpg, PyMySQL, sqlite3), the
adapter's around it where SQLAlchemy has one, and SQLAlchemy's wrapper on top.
"""

import sqlite3
from collections.abc import Callable

import asyncpg.exceptions as pg
import pymysql.err as my
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

STATEMENT = "UPDATE saga_instances SET state = $1 WHERE saga_id = $2"


def postgres(kind: type[pg.PostgresError], text: str) -> DBAPIError:
    """What asyncpg's ``kind`` becomes once SQLAlchemy's asyncpg adapter translated it."""
    cause = kind(text)
    adapted = AsyncAdapt_asyncpg_dbapi.Error(text, cause)
    adapted.__cause__ = cause  # the adapter raises it "from" asyncpg's
    return DBAPIError.instance(STATEMENT, {}, adapted, AsyncAdapt_asyncpg_dbapi.Error)


def mysql(kind: type[my.MySQLError], code: int, text: str) -> DBAPIError:
    """What PyMySQL's error ``code`` becomes through SQLAlchemy's aiomysql dialect."""
    return DBAPIError.instance(STATEMENT, {}, kind(code, text), my.MySQLError)


def sqlite(text: str) -> DBAPIError:
    return DBAPIError.instance(STATEMENT, {}, sqlite3.OperationalError(text), sqlite3.Error)


SURROUNDINGS: dict[str, Callable[[], Exception]] = {
    "pool checkout timeout": lambda: PoolTimeoutError(
        "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00"
    ),
    "pg 53300 too many connections": lambda: postgres(
        pg.TooManyConnectionsError, "sorry, too many clients already"
    ),
    "pg 53200 out of memory": lambda: postgres(pg.OutOfMemoryError, "out of memory"),
    "pg 55P03 lock not available": lambda: postgres(
        pg.LockNotAvailableError, "canceling statement due to lock timeout"
    ),
    "pg 57014 statement cancelled": lambda: postgres(
        pg.QueryCanceledError, "canceling statement due to statement timeout"
    ),
    "pg 25P03 idle in transaction timeout": lambda: postgres(
        pg.IdleInTransactionSessionTimeoutError,
        "terminating connection due to idle-in-transaction timeout",
    ),
    "pg 55000 not accepting connections": lambda: postgres(
        pg.ObjectNotInPrerequisiteStateError,
        'database "orchestrator" is not currently accepting connections',
    ),
    "pg 57P03 cannot connect now": lambda: postgres(
        pg.CannotConnectNowError, "the database system is shutting down"
    ),
    "pg 40001 serialization failure": lambda: postgres(
        pg.SerializationError, "could not serialize access due to concurrent update"
    ),
    "pg 40P01 deadlock": lambda: postgres(pg.DeadlockDetectedError, "deadlock detected"),
    "mysql 1040 too many connections": lambda: mysql(
        my.OperationalError, 1040, "Too many connections"
    ),
    "mysql 1205 lock wait timeout": lambda: mysql(
        my.OperationalError, 1205, "Lock wait timeout exceeded; try restarting transaction"
    ),
    "mysql 1213 deadlock": lambda: mysql(
        my.OperationalError, 1213, "Deadlock found when trying to get lock"
    ),
    "mysql 1213 deadlock as an internal error": lambda: mysql(
        my.InternalError, 1213, "Deadlock found when trying to get lock"
    ),
    "mysql 2006 server gone away": lambda: mysql(
        my.OperationalError, 2006, "MySQL server has gone away"
    ),
    "mysql 2013 lost connection": lambda: mysql(
        my.OperationalError, 2013, "Lost connection to MySQL server during query"
    ),
    "sqlite database is locked": lambda: sqlite("database is locked"),
    "connection refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "timeout": lambda: TimeoutError(),
}
"""Faults of the surroundings: the database, the network, a pool, a lock, a timeout."""

UNEXPECTED: dict[str, Callable[[], Exception]] = {
    "a bug": lambda: ValueError("a bug"),
    "a broken constraint": lambda: IntegrityError(
        STATEMENT, {}, Exception('new row violates check constraint "ck_stock_quantity"')
    ),
}
"""Failures that are no known fault of the surroundings; retried all the same."""
