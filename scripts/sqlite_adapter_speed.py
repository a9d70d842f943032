"""How fast small SQLite transactions are through each way SQLAlchemy's async engine can
reach a file: this project's inline adapter (``db/engine.py``) or aiosqlite's own thread.

    .venv/bin/python scripts/sqlite_adapter_speed.py [--transactions 2000] [--rounds 3]

Each transaction inserts one row and commits, on a file in WAL mode with
``synchronous=FULL`` (as the services run it); a second figure with ``synchronous=OFF``
shows the cost of the thread hops alone, without the fsync of each commit.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ordersaga.db.engine import make_engine, sqlite_url


def plain_aiosqlite(path: Path, synchronous: str) -> AsyncEngine:
    """SQLAlchemy's supported route: its aiosqlite dialect on aiosqlite's own thread."""
    engine = create_async_engine(sqlite_url(path), pool_size=1, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _pragmas(synchronous))
    return engine


def inline(path: Path, synchronous: str) -> AsyncEngine:
    """The project's engine: sqlite3 called in the event loop's thread."""
    engine = make_engine(sqlite_url(path))
    if synchronous != "FULL":
        event.listen(engine.sync_engine, "connect", _pragmas(synchronous))
    return engine


def _pragmas(synchronous: str) -> Any:
    def set_pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    return set_pragmas


async def transactions_per_second(engine: AsyncEngine, count: int) -> float:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    started = time.perf_counter()
    for i in range(count):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"value {i}"})
    elapsed = time.perf_counter() - started
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM t")) == count
    await engine.dispose()
    return count / elapsed


async def main(count: int, rounds: int) -> None:
    routes = {"inline (db/engine.py)": inline, "aiosqlite thread": plain_aiosqlite}
    for synchronous in ("FULL", "OFF"):
        for name, route in routes.items():
            figures = []
            for _ in range(rounds):
                with tempfile.TemporaryDirectory() as directory:
                    engine = route(Path(directory) / "speed.sqlite3", synchronous)
                    figures.append(await transactions_per_second(engine, count))
            print(
                f"synchronous={synchronous:<4} {name:<22} "
                f"{statistics.median(figures):8.0f} transactions/s "
                f"(median of {rounds}; {count} transactions of one insert each)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.transactions, arguments.rounds))
