"""Whether a failure is a known fault of the surroundings, or something unexpected.

Both are retried (see :mod:`ordersaga.messaging.consumer`: only the message's own fault
makes poison); this only says how a failure is reported. A fault of the surroundings
(a database, broker or network away, busy or slow: a pool, lock or statement timeout, a
deadlock, a server shutting down or refusing connections) is expected and logged as a
warning without a traceback; anything else (a broken constraint, a bug) is logged as
an error with its traceback, for someone to look at, while it is retried.
"""

import sqlite3

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# PostgreSQL SQLSTATEs. asyncpg reports most of these as a plain DBAPIError (not an
# OperationalError), so the SQLAlchemy class alone does not tell.
_TRANSIENT_SQLSTATE_CLASSES = (
    "08",  # connection exception
    "40",  # transaction rollback: serialization failure, deadlock
    "53",  # insufficient resources: too many connections, out of memory or disk
    "57",  # operator intervention: statement cancelled or timed out, shutdown, restart
    "58",  # system error: I/O error
)
_TRANSIENT_SQLSTATES = {
    "25P03",  # idle-in-transaction session timeout
    "55P03",  # lock not available (lock_timeout, NOWAIT)
    "55000",  # object not in prerequisite state: "database ... is not accepting connections"
}

# MySQL/MariaDB error numbers (the first argument of a PyMySQL error).
_TRANSIENT_MYSQL_CODES = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1158,  # net read error
    1159,  # net read timeout
    1160,  # net write error
    1161,  # net write timeout
    1205,  # lock wait timeout exceeded
    1213,  # deadlock found
    1317,  # query execution was interrupted
    1927,  # connection was killed (MariaDB)
    1969,  # max_statement_time exceeded (MariaDB)
    2002,  # cannot connect through socket
    2003,  # cannot connect to server
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection at a given stage
    3024,  # max_execution_time exceeded (MySQL)
    4031,  # disconnected by the server for inactivity (MySQL)
}
_MYSQL_DRIVER_MODULES = ("pymysql", "aiomysql", "asyncmy", "MySQLdb")

_KAFKA_CLIENT_MODULES = ("aiokafka", "kafka")

_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, the driver's exception under it and what caused those."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 10:
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _transient_sqlstate(error: BaseException) -> bool:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not isinstance(state, str):
        return False
    return state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)


def _transient_mysql_code(error: BaseException) -> bool:
    if not type(error).__module__.startswith(_MYSQL_DRIVER_MODULES):
        return False
    code = error.args[0] if error.args else None
    return isinstance(code, int) and code in _TRANSIENT_MYSQL_CODES


def _sqlite_busy(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and str(error).startswith(_SQLITE_BUSY)


def _retriable_kafka_error(error: BaseException) -> bool:
    """A Kafka client error that says of itself that a retry may succeed."""
    module = type(error).__module__
    return module.startswith(_KAFKA_CLIENT_MODULES) and getattr(error, "retriable", False) is True


def _transient_cause(error: BaseException) -> bool:
    return (
        isinstance(error, ConnectionError | TimeoutError | OSError | PoolTimeoutError)
        or _transient_sqlstate(error)
        or _transient_mysql_code(error)
        or _sqlite_busy(error)
        or _retriable_kafka_error(error)
    )


def is_transient(error: BaseException) -> bool:
    """A fault of the surroundings (database, broker or network away, busy or slow).

    False means unexpected, not poison: the consumer retries both.
    """
    if isinstance(error, OperationalError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return any(_transient_cause(cause) for cause in _causes(error))


_LOGIN_SQLSTATES = frozenset({"28000", "28P01", "42501"})
"""PostgreSQL: invalid authorization, wrong password, no right to connect."""
_LOGIN_MYSQL_CODES = frozenset({1044, 1045, 1698})
"""MariaDB: no access to the database, wrong password, no such login for this host."""


def login_refused(error: BaseException) -> bool:
    """Whether the database refused who logged in (a wrong password, a login without the
    right to this database): a setting to fix, never a fault that passes by itself."""
    for cause in _causes(error):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state in _LOGIN_SQLSTATES:
            return True
        if type(cause).__module__.startswith(_MYSQL_DRIVER_MODULES):
            code = cause.args[0] if cause.args else None
            if code in _LOGIN_MYSQL_CODES:
                return True
    return False

