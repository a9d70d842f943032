"""Exceptions a handler may meet, by kind of fault: none of them the message's own.

The database errors are those of :data:`tests.driver_errors.CATALOG`, built as the real
stack builds them (the driver's exception, SQLAlchemy's adapter and wrapper on top); a
few faults of the network and a timeout join them. The consumer loop retries every one.
"""

from collections.abc import Callable
from functools import partial

import pymysql.err
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.driver_errors import CATALOG, Dialects

STATEMENT = "UPDATE saga_instances SET state = $1 WHERE saga_id = $2"
_DIALECTS = Dialects()

SURROUNDINGS: dict[str, Callable[[], Exception]] = {
    **{fault.kind: partial(fault.build, _DIALECTS, STATEMENT) for fault in CATALOG},
    # Some PyMySQL versions raise a deadlock as an InternalError rather than operational.
    "mysql-1213-internal": lambda: DBAPIError.instance(
        STATEMENT,
        {},
        pymysql.err.InternalError(1213, "Deadlock found when trying to get lock"),
        pymysql.err.MySQLError,
    ),
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
