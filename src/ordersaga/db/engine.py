"""Creating async engines, with the settings each database needs."""

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# The error codes of a violated CHECK constraint: MariaDB's, then MySQL's. PyMySQL maps
# them to OperationalError, the class of a database that is away.
_CHECK_VIOLATIONS = frozenset({4025, 3819})


def sqlite_url(path: Path | None) -> str:
    """An aiosqlite URL for a file, or for a private in-memory database when ``None``."""
    return "sqlite+aiosqlite://" if path is None else f"sqlite+aiosqlite:///{path}"


def make_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine for ``url``. SQLite gets WAL and a single connection per engine.

    SQLite allows one writer at a time; one connection per engine turns contention
    between a service's consumer, relay and API into an orderly queue instead of
    ``database is locked`` errors.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=1, max_overflow=0, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith(("mysql", "mariadb")):
        # InnoDB's default REPEATABLE READ takes gap locks: the outbox relay's
        # SELECT ... FOR UPDATE would then block every INSERT of a new order behind it.
        # READ COMMITTED locks only the rows read, as PostgreSQL does by default.
        options.setdefault("isolation_level", "READ COMMITTED")
    engine = create_async_engine(url, pool_pre_ping=True, **options)
    if engine.dialect.name in ("mysql", "mariadb"):
        event.listen(engine.sync_engine, "handle_error", _check_violation_is_integrity_error)
    return engine


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
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create the tables of ``metadata`` that do not exist yet (embedded mode and tests)."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
