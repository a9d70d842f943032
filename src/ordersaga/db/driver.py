"""PostgreSQL's hot statements run on asyncpg itself, inside SQLAlchemy's transaction.

A statement through SQLAlchemy Core costs far more Python than the driver call under it
(the compiled-statement cache look-up, parameter and result processing, the execution
context, the DBAPI cursor adapter). The statements a service runs for every message (the
inbox, the outbox and its relay, the saga store, the holdings) therefore take this
route on PostgreSQL: :func:`postgres` gives the asyncpg connection under a SQLAlchemy
connection, in the transaction SQLAlchemy opened (begun here if SQLAlchemy has not sent a
statement yet), so commit, rollback and the pool stay SQLAlchemy's. asyncpg prepares each
statement text once per connection and keeps it (its statement cache). Other databases
(SQLite, MariaDB) get ``None`` and the portable SQLAlchemy statements; SQLAlchemy keeps
the schema, migrations and tools everywhere.

Errors are raised as SQLAlchemy raises them (``IntegrityError``, ``DBAPIError`` carrying
the SQLSTATE, a lost connection invalidated), so callers' ``except`` clauses and the
retry code's classification (:mod:`ordersaga.messaging.transient`) see the same.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection


class Postgres:
    """The asyncpg connection of one SQLAlchemy connection, in its open transaction."""

    __slots__ = ("_adapter", "_conn", "_raw")

    def __init__(self, conn: AsyncConnection, adapter: Any) -> None:
        self._conn = conn
        self._adapter = adapter
        self._raw = adapter._connection

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows of ``sql`` (asyncpg records: by name or position)."""
        try:
            return list(await self._raw.fetch(sql, *args))
        except Exception as error:
            raise await self._translated(error, sql, args) from error

    async def value(self, sql: str, *args: Any) -> Any:
        """The first column of the first row of ``sql``; None without rows."""
        try:
            return await self._raw.fetchval(sql, *args)
        except Exception as error:
            raise await self._translated(error, sql, args) from error

    async def execute(self, sql: str, *args: Any) -> int:
        """Run ``sql``; how many rows it affected."""
        try:
            status: str = await self._raw.execute(sql, *args)
        except Exception as error:
            raise await self._translated(error, sql, args) from error
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else -1

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row of parameters, in order, in one round trip."""
        if len(rows) == 1:
            await self.execute(sql, *rows[0])
            return
        try:
            await self._raw.executemany(sql, rows)
        except Exception as error:
            raise await self._translated(error, sql, rows) from error

    async def _translated(self, error: Exception, sql: str, args: Any) -> Exception:
        """``error`` as SQLAlchemy would have raised it for ``sql``; a lost connection is
        invalidated, so that the pool replaces it."""
        dialect = self._conn.dialect
        base = dialect.loaded_dbapi.Error
        try:
            self._adapter._handle_exception(error)
        except base as dbapi_error:
            disconnect = dialect.is_disconnect(dbapi_error, self._adapter, None)
            if disconnect:
                await self._conn.invalidate(dbapi_error)
            return DBAPIError.instance(
                sql, args, dbapi_error, base, connection_invalidated=disconnect, dialect=dialect
            )
        except Exception as other:  # not a database error (a timeout, an OSError)
            return other
        return error


async def postgres(conn: AsyncConnection) -> Postgres | None:
    """The asyncpg route of ``conn``'s transaction, or None off PostgreSQL (then use the
    SQLAlchemy statements)."""
    if conn.dialect.driver != "asyncpg":
        return None
    if not conn.in_transaction():
        await conn.begin()  # as a statement would: the caller's commit or rollback ends it
    sync = conn.sync_connection
    if sync is not None and not sync.invalidated and not sync.closed:
        # No I/O for a valid connection, and a twentieth of the awaited way's cost.
        adapter: Any = sync.connection.dbapi_connection
    else:  # reconnects, or raises as a statement would
        adapter = (await conn.get_raw_connection()).dbapi_connection
    if adapter._transaction is None and not adapter.autocommit:
        try:
            await adapter._start_transaction()
        except Exception as error:
            raise await Postgres(conn, adapter)._translated(error, "BEGIN", ()) from error
    return Postgres(conn, adapter)


def insert_sql(table: Table, columns: Iterable[str]) -> str:
    """``INSERT INTO table (columns) VALUES ($1, ...)``, for :meth:`Postgres.execute_many`."""
    names = list(columns)
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    places = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({places})"
