"""Creating async engines, with the settings each database needs.

SQLite is reached through :class:`InlineSqliteConnection`, which calls sqlite3 in the
event loop's thread, not through aiosqlite's thread: measured 1.8 times as fast for
small transactions (see the section on it below). SQLAlchemy's aiosqlite dialect reads
private attributes of the connection it is given; a contract test names the one an
upgrade of SQLAlchemy reads differently.
"""

import asyncio
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from ordersaga.db.lock_timeout import prefix_lock_timeouts

# The error codes of a violated CHECK constraint: MariaDB's, then MySQL's. PyMySQL maps
# them to OperationalError, the class of a database that is away.
_CHECK_VIOLATIONS = frozenset({4025, 3819})

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite statement waits for another connection's write lock."""


def sqlite_url(path: Path | None) -> str:
    """An aiosqlite URL for a file, or for a private in-memory database when ``None``."""
    return "sqlite+aiosqlite://" if path is None else f"sqlite+aiosqlite:///{path}"


def make_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine for ``url``. SQLite gets WAL, full fsync and a single connection per engine.

    SQLite allows one writer at a time; one connection per engine turns contention
    between a service's consumer, relay and API into an orderly queue instead of
    ``database is locked`` errors. Its statements run in the event loop's own thread
    (see :class:`InlineSqliteConnection`).

    No engine rolls back a connection returned to its pool after its transaction ended:
    by default the pool does so for every connection it takes back, even right after a
    commit, which on MariaDB is a round trip per transaction (a fifth of the order
    service's database calls). A connection returned inside a transaction is still
    rolled back (:func:`_roll_back_if_in_transaction`).
    """
    options.setdefault("pool_reset_on_return", None)
    engine = _create(url, options)
    event.listen(engine.sync_engine, "reset", _roll_back_if_in_transaction)
    return engine


def _create(url: str, options: dict[str, Any]) -> AsyncEngine:
    if url.startswith("sqlite"):
        database = make_url(url).database or ":memory:"
        options.setdefault("async_creator", _inline_sqlite(database))
        if database != ":memory:":  # a private in-memory database gets its static pool
            options.update(pool_size=1, max_overflow=0)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith(("mysql", "mariadb")):
        # InnoDB's default REPEATABLE READ takes gap locks: the outbox relay's
        # SELECT ... FOR UPDATE would then block every INSERT of a new order behind it.
        # READ COMMITTED locks only the rows read, as PostgreSQL does by default.
        options.setdefault("isolation_level", "READ COMMITTED")
    if url.startswith("postgresql"):
        url = _postgres_tls(url, options)
    engine = create_async_engine(url, **options)
    ping_after_idle(engine, PING_AFTER_IDLE)
    if engine.dialect.name in ("mysql", "mariadb"):
        event.listen(engine.sync_engine, "handle_error", _check_violation_is_integrity_error)
        prefix_lock_timeouts(engine.sync_engine)
    return engine


PING_AFTER_IDLE = 1.0
"""Seconds a pooled connection may lie unused before it is pinged on its next checkout."""

_RETURNED_AT = "ordersaga.returned_at"


def ping_after_idle(engine: AsyncEngine, idle: float) -> None:
    """Ping a pooled connection on checkout only if it lay unused for over ``idle`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per transaction,
    to both the service and its database, whatever the load (at 25 sagas a second a
    saga's transactions are each a batch of one). A connection in steady use needs no
    ping: if its server went away meanwhile, the statement fails as a disconnect, which
    invalidates every connection of the pool, and the transaction is retried as for any
    database fault. One that lay idle (a quiet service, a restarted database) is pinged,
    and replaced if the ping finds it dead.
    """
    dialect = engine.sync_engine.dialect

    def returned(_dbapi: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    def taken(dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned_at = record.info.pop(_RETURNED_AT, None)
        if returned_at is None or time.monotonic() - returned_at <= idle:
            return  # just connected, or in steady use
        try:
            dialect.do_ping(dbapi)
        except Exception as error:
            if dialect.is_disconnect(error, dbapi, None):  # type: ignore[arg-type]
                raise DisconnectionError(f"a pooled connection was dead: {error}") from error
            raise

    event.listen(engine.sync_engine, "checkin", returned)
    event.listen(engine.sync_engine, "checkout", taken)


def _postgres_tls(url: str, options: dict[str, Any]) -> str:
    """``?ssl=verify-full&sslrootcert=/path/ca.crt`` (or ``verify-ca``) as libpq reads
    them: asyncpg takes no ``sslrootcert``, so the URL's pair becomes an SSL context
    trusting that CA alone — with the server's name checked against its certificate for
    ``verify-full`` — and leaves the URL."""
    parsed = make_url(url)
    root = parsed.query.get("sslrootcert")
    if root is None:
        return url
    mode = parsed.query.get("ssl") or parsed.query.get("sslmode")
    if mode not in ("verify-full", "verify-ca"):
        raise ValueError(
            f"sslrootcert is for ssl=verify-full or ssl=verify-ca, not ssl={mode}: {parsed!r}"
        )
    if not isinstance(root, str) or not Path(root).is_file():
        raise ValueError(f"sslrootcert {root} is not a file: {parsed!r}")
    context = ssl.create_default_context(cafile=root)
    context.check_hostname = mode == "verify-full"
    options.setdefault("connect_args", {})["ssl"] = context
    return parsed.difference_update_query(["ssl", "sslmode", "sslrootcert"]).render_as_string(
        hide_password=False
    )


def _roll_back_if_in_transaction(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    if state.transaction_was_reset or not state.asyncio_safe:
        return  # ended by its Connection already, or being discarded (not reusable)
    # aiomysql knows from the server's last status whether a transaction is open
    # (asyncpg's adapter skips a rollback without one on its own).
    in_transaction = getattr(record.driver_connection, "get_transaction_status", None)
    if in_transaction is not None and not in_transaction():
        return
    dbapi_connection.rollback()


def _check_violation_is_integrity_error(context: ExceptionContext) -> IntegrityError | None:
    """Report a violated CHECK constraint on MariaDB/MySQL as the IntegrityError it is.

    Left an OperationalError, the consumer loop would take it for a transient fault and
    retry the message forever instead of dead-lettering it.
    """
    original = context.original_exception
    code = original.args[0] if original.args else None
    if code not in _CHECK_VIOLATIONS:
        return None
    return IntegrityError(
        context.statement,
        context.parameters,
        original,
        connection_invalidated=context.is_disconnect,
    )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (the WAL is fsynced) before it returns. NORMAL would be
    # faster but may lose the last commits on power loss, after their offsets were
    # committed or their outbox rows acknowledged, which breaks exactly-once effects.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create the tables of ``metadata`` that do not exist yet (embedded mode and tests)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


# -- SQLite in the event loop's thread ---------------------------------------------------
#
# aiosqlite runs every call (cursor, execute, fetch, close) on a thread of its own and
# hands the result back through the event loop: four thread hops per statement, which
# cost far more than the statement itself on a local file (about 0.5 ms against 10 µs).
# These classes give SQLAlchemy's aiosqlite dialect the same interface on a plain
# sqlite3 connection called directly. A statement then blocks the loop for as long as it
# runs, which for a local file is microseconds, or an fsync at commit; the in-process
# broker writes its own SQLite file the same way.
#
# Kept, by measurement, over the supported route (the dialect on aiosqlite's own
# thread): 2,000 transactions of one insert each on a WAL file with synchronous=FULL run
# at about 390 a second through these classes against 215 through aiosqlite (SQLAlchemy
# 2.1.9, aiosqlite 0.22.1, 2 shared cores; `python scripts/sqlite_adapter_speed.py`).
# The price: the dialect reads private attributes of aiosqlite's connection, which
# InlineSqliteConnection mimics (SQLALCHEMY_READS). tests/integration/
# test_sqlite_adapter_contract.py runs the dialect's every use of them and fails, naming
# the attribute and the SQLAlchemy version, when an upgrade reads another one or stops
# reading one.

SQLALCHEMY_READS = frozenset({"_conn", "_connection", "_tx"})
"""The private attributes of aiosqlite's connection SQLAlchemy's aiosqlite dialect reads:
``_connection`` (open or closed, before commit and rollback), ``_conn`` (the sqlite3
connection) and ``_tx`` (the queue to its thread; both to set the isolation level)."""


def _inline_sqlite(database: str) -> Callable[[], Any]:
    async def connect() -> InlineSqliteConnection:
        return InlineSqliteConnection(
            sqlite3.connect(
                database, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
        )

    return connect


class InlineSqliteCursor:
    """An aiosqlite-like cursor whose coroutines never suspend."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> "InlineSqliteCursor":
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> "InlineSqliteCursor":
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> "InlineSqliteCursor":
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: runs the call at once."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(result)


class InlineSqliteConnection:
    """An aiosqlite-like connection that calls sqlite3 directly, in the caller's thread.

    Its private attributes are the ones SQLAlchemy reads (:data:`SQLALCHEMY_READS`).
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineSqliteCursor:
        return InlineSqliteCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineSqliteCursor:
        return await self.cursor().execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        # The one call that waits for the disk (fsync): on a thread, so the event loop
        # carries on meanwhile. A commit under way is not abandoned when the caller is
        # cancelled: it finishes first, then the cancellation goes on, so the connection
        # is never used by two threads and its transaction is either committed or not.
        # Handed to the thread at once, not on the loop's next turn: another connection
        # to the same file may block the loop waiting for this one's write lock.
        commit = asyncio.get_running_loop().run_in_executor(None, self._conn.commit)
        cancelled = False
        while not commit.done():
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                cancelled = True
        commit.result()
        if cancelled:
            raise asyncio.CancelledError

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()
