"""Bounding how long one transaction waits for a lock, on each database.

PostgreSQL has a transaction-scoped setting (``SET LOCAL lock_timeout``). MariaDB's lock
waits (``innodb_lock_wait_timeout`` for rows, ``lock_wait_timeout`` for tables) are
session variables, and a pooled connection's session outlives the transaction, so there
each statement of the transaction is run as ``SET STATEMENT ... FOR <statement>``
instead: the bound ends with the statement and never leaks to the next user of the
connection. SQLite waits for its one writer lock for ``busy_timeout`` already.
"""

import math
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.driver import postgres

_OPTION = "ordersaga_lock_timeout"


async def bound_lock_waits(conn: AsyncConnection, seconds: float) -> None:
    """Make the statements of ``conn``'s transaction wait at most ``seconds`` for a lock.

    A wait that lasts longer fails the statement (``OperationalError`` or ``DBAPIError``)
    instead of holding the transaction, and what it holds, for as long as another one
    keeps its lock.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        setting = f"{max(1, round(seconds * 1000))}ms"
        pg = await postgres(conn)
        if pg is not None:
            await pg.value("SELECT set_config('lock_timeout', $1, true)", setting)
        else:
            await conn.execute(select(func.set_config("lock_timeout", setting, True)))
    elif dialect in ("mysql", "mariadb") and getattr(conn.dialect, "is_mariadb", False):
        # Whole seconds (MariaDB's unit), and at least one: 0 would mean "do not wait".
        await conn.execution_options(**{_OPTION: max(1, math.ceil(seconds))})


def prefix_lock_timeouts(engine: Engine) -> None:
    """Let :func:`bound_lock_waits` work on a MariaDB ``engine`` (done by ``make_engine``)."""
    if not event.contains(engine, "before_cursor_execute", _set_statement):
        event.listen(engine, "before_cursor_execute", _set_statement, retval=True)


def _set_statement(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> tuple[str, Any]:
    seconds = context.execution_options.get(_OPTION) if context is not None else None
    if seconds is None:
        return statement, parameters
    prefix = (
        f"SET STATEMENT innodb_lock_wait_timeout={int(seconds)}, "
        f"lock_wait_timeout={int(seconds)} FOR "
    )
    return prefix + statement, parameters
