"""The hot statements run on the driver itself, inside SQLAlchemy's transaction.

A statement through SQLAlchemy Core costs far more Python than the driver call under it
(the compiled-statement cache look-up, parameter and result processing, the execution
context, the DBAPI cursor adapter). The statements a service runs for every message (the
inbox, the outbox and its relay, the saga store, the holdings) therefore take this
route on PostgreSQL and SQLite. :func:`postgres` gives the asyncpg connection under a
SQLAlchemy connection, in the transaction SQLAlchemy opened (begun here if SQLAlchemy has
not sent a statement yet), so commit, rollback and the pool stay SQLAlchemy's. asyncpg
prepares each statement text once per connection and keeps it (its statement cache).
:func:`driver` gives that, or on SQLite the sqlite3 connection under SQLAlchemy's (the
embedded system's), which runs the same PostgreSQL text rewritten once for SQLite
(:func:`sqlite_sql`) and keeps it prepared in sqlite3's statement cache. MariaDB gets
``None`` and the portable SQLAlchemy statements; SQLAlchemy keeps the schema, migrations
and tools everywhere.

Errors are raised as SQLAlchemy raises them (``IntegrityError``, ``DBAPIError`` carrying
the SQLSTATE, a lost connection invalidated), so callers' ``except`` clauses and the
retry code's classification (:mod:`ordersaga.messaging.transient`) see the same.
"""

import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine


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

    async def fetch_rows(self, sql: str, table: Table, *args: Any) -> list[Any]:
        """The rows of ``sql``, which selects every column of ``table`` in order, by column
        name and as SQLAlchemy reads them (asyncpg's records are that already)."""
        return await self.fetch(sql, *args)

    def bind(self, type_: TypeEngine[Any], value: Any) -> Any:
        """``value`` of a column of ``type_`` as the driver takes it (asyncpg: as it is)."""
        return value

    def read(self, type_: TypeEngine[Any], value: Any) -> Any:
        """``value`` read from a column of ``type_`` as SQLAlchemy reads it (asyncpg: as it is)."""
        return value

    async def execute(self, sql: str, *args: Any) -> int:
        """Run ``sql``; how many rows it affected."""
        try:
            status: str = await self._raw.execute(sql, *args)
        except Exception as error:
            raise await self._translated(error, sql, args) from error
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else -1

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int | None:
        """Run ``sql`` once per row of parameters, in order, in one round trip; how many
        rows it affected in all when the driver tells (not asyncpg for several rows)."""
        if len(rows) == 1:
            return await self.execute(sql, *rows[0])
        try:
            await self._raw.executemany(sql, rows)
        except Exception as error:
            raise await self._translated(error, sql, rows) from error
        return None

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
    adapter = await _adapter_in_transaction(conn)
    if adapter._transaction is None and not adapter.autocommit:
        try:
            await adapter._start_transaction()
        except Exception as error:
            raise await Postgres(conn, adapter)._translated(error, "BEGIN", ()) from error
    return Postgres(conn, adapter)


class Sqlite:
    """The sqlite3 connection of one SQLAlchemy connection, in its transaction.

    Runs PostgreSQL statement text rewritten for SQLite (:func:`sqlite_sql`); lists are
    bound as JSON arrays (read back by ``json_each``), timestamps as SQLAlchemy stores
    them on SQLite (naive UTC text). sqlite3 begins the transaction before the first
    write, as it does under SQLAlchemy; its commit and rollback stay SQLAlchemy's.
    Rows read come back as tuples, but from :meth:`fetch_rows`; a column whose type
    SQLAlchemy converts on SQLite (``Money`` in cents, ``UtcDateTime``) is converted
    the same way by :meth:`bind`, :meth:`read` and :meth:`fetch_rows`.
    """

    __slots__ = ("_conn", "_raw")

    def __init__(self, conn: AsyncConnection, raw: sqlite3.Connection) -> None:
        self._conn = conn
        self._raw = raw

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows of ``sql``, as tuples."""
        return self._run(sql, args).fetchall()

    async def value(self, sql: str, *args: Any) -> Any:
        """The first column of the first row of ``sql``; None without rows."""
        row = self._run(sql, args).fetchone()
        return None if row is None else row[0]

    async def fetch_rows(self, sql: str, table: Table, *args: Any) -> list[dict[str, Any]]:
        """The rows of ``sql``, which selects every column of ``table`` in order, by column
        name and as SQLAlchemy reads them."""
        names, readers = _readers(table, self._conn.dialect)
        rows = self._run(sql, args).fetchall()
        if not readers:
            return [dict(zip(names, row, strict=True)) for row in rows]
        read = []
        for row in rows:
            values = list(row)
            for i, process in readers:
                if values[i] is not None:
                    values[i] = process(values[i])
            read.append(dict(zip(names, values, strict=True)))
        return read

    def bind(self, type_: TypeEngine[Any], value: Any) -> Any:
        """``value`` of a column of ``type_`` as SQLAlchemy binds it on SQLite."""
        process = type_._cached_bind_processor(self._conn.dialect)
        return value if process is None else process(value)

    def read(self, type_: TypeEngine[Any], value: Any) -> Any:
        """``value`` read from a column of ``type_`` as SQLAlchemy reads it on SQLite."""
        process = type_._cached_result_processor(self._conn.dialect, None)
        return value if process is None or value is None else process(value)

    async def execute(self, sql: str, *args: Any) -> int:
        """Run ``sql``; how many rows it affected."""
        cursor = self._run(sql, args)
        count: int = cursor.rowcount
        cursor.close()
        return count

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per row of parameters, in order; how many rows it affected."""
        text = sqlite_sql(sql)
        bound = _Bound()
        try:
            cursor = self._raw.executemany(text, [bound.row(row) for row in rows])
        except sqlite3.Error as error:
            raise self._translated(error, text, rows) from error
        count: int = cursor.rowcount
        cursor.close()
        return count

    def _run(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        text = sqlite_sql(sql)
        try:
            return self._raw.execute(text, _Bound().row(args))
        except sqlite3.Error as error:
            raise self._translated(error, text, args) from error

    def _translated(self, error: sqlite3.Error, sql: str, args: Any) -> Exception:
        """``error`` as SQLAlchemy would have raised it for ``sql``."""
        return DBAPIError.instance(sql, args, error, sqlite3.Error, dialect=self._conn.dialect)


@lru_cache(maxsize=64)
def _readers(table: Table, dialect: Dialect) -> tuple[tuple[str, ...], list[tuple[int, Any]]]:
    """The names of ``table``'s columns, and the position and result processor of each
    column whose type ``dialect`` converts."""
    names = tuple(column.name for column in table.c)
    processors = [c.type._cached_result_processor(dialect, None) for c in table.c]
    return names, [(i, process) for i, process in enumerate(processors) if process is not None]


_ANY = re.compile(r"= ANY\((\$\d+)\)")
_ROW_LOCKS = re.compile(r"\s+FOR UPDATE( SKIP LOCKED)?")
_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=512)
def sqlite_sql(sql: str) -> str:
    """PostgreSQL text as SQLite runs it: ``$n`` as ``?n``, ``= ANY($n)`` as a ``json_each``
    of the JSON array bound there, and no row locks (SQLite has one writer at a time)."""
    sql = _ANY.sub(r"IN (SELECT value FROM json_each(\1))", sql)
    sql = _ROW_LOCKS.sub("", sql)
    return _PLACEHOLDER.sub(r"?\1", sql)


_AS_THEY_ARE = frozenset({str, int, bytes, float, type(None)})


class _Bound:
    """Parameters as sqlite3 binds them; a timestamp that recurs (a batch's ``now`` in
    every row) is converted once."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: dict[datetime, str] = {}

    def row(self, values: Sequence[Any]) -> Sequence[Any]:
        for v in values:  # a loop, not all(...): run for every row of every statement
            if type(v) not in _AS_THEY_ARE:
                return [v if type(v) in _AS_THEY_ARE else self._value(v) for v in values]
        return values

    def _value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            text = self._times.get(value)
            if text is None:
                text = self._times[value] = sqlite_time(value)
            return text
        if isinstance(value, list | tuple):
            return orjson.dumps(value).decode()
        return value


def sqlite_time(value: datetime) -> str:
    """An aware timestamp as SQLAlchemy stores it on SQLite: naive UTC text, microseconds."""
    if value.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


Driver = Postgres | Sqlite
"""A driver-level route: the same statement text on PostgreSQL and SQLite."""


async def driver(conn: AsyncConnection) -> Driver | None:
    """The driver route of ``conn``'s transaction (PostgreSQL or SQLite), or None on
    MariaDB (then use the SQLAlchemy statements)."""
    if conn.dialect.name != "sqlite":
        return await postgres(conn)
    adapter = await _adapter_in_transaction(conn)
    # The dialect's adapter, over the inline adapter, over sqlite3 (db/engine.py).
    return Sqlite(conn, adapter._connection._conn)


async def _adapter_in_transaction(conn: AsyncConnection) -> Any:
    """The SQLAlchemy dialect's DBAPI adapter under ``conn``, in SQLAlchemy's transaction."""
    if not conn.in_transaction():
        await conn.begin()  # as a statement would: the caller's commit or rollback ends it
    sync = conn.sync_connection
    if sync is not None and not sync.invalidated and not sync.closed:
        # No I/O for a valid connection, and a twentieth of the awaited way's cost.
        return sync.connection.dbapi_connection
    # Reconnects, or raises as a statement would.
    return (await conn.get_raw_connection()).dbapi_connection


def insert_sql(table: Table, columns: Iterable[str]) -> str:
    """``INSERT INTO table (columns) VALUES ($1, ...)``, for :meth:`Postgres.execute_many`."""
    names = list(columns)
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    places = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({places})"
