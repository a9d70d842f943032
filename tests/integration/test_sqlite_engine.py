"""SQLite engines: statements in the event loop's thread, durable commits, WAL."""

from pathlib import Path

from sqlalchemy import text

from ordersaga.db.engine import make_engine, sqlite_url


async def test_a_file_database_commits_durably_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "durable.sqlite3"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1), (2)"))
    async with engine.connect() as conn:
        mode = await conn.scalar(text("PRAGMA journal_mode"))
        synchronous = await conn.scalar(text("PRAGMA synchronous"))
        rows = await conn.scalar(text("SELECT COUNT(*) FROM t"))
    await engine.dispose()
    assert (mode, synchronous, rows) == ("wal", 2, 2)  # 2 is FULL


async def test_a_rolled_back_transaction_leaves_nothing(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "rollback.sqlite3"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER)"))
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        await conn.rollback()
    async with engine.connect() as conn:
        rows = await conn.scalar(text("SELECT COUNT(*) FROM t"))
    await engine.dispose()
    assert rows == 0


async def test_a_private_in_memory_database_works() -> None:
    engine = make_engine(sqlite_url(None))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    async with engine.connect() as conn:
        rows = await conn.scalar(text("SELECT COUNT(*) FROM t"))
    await engine.dispose()
    assert rows == 1
