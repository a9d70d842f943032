"""Creating async engines, with the settings each database needs."""

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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
    return create_async_engine(url, pool_pre_ping=True, **options)


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
