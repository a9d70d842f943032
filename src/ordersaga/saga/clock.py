"""Where the saga engine's "now" comes from: one clock for every replica.

Deadlines are set from "now" when a saga waits and compared with "now" by every
replica's timer. Read from each replica's own process clock, a replica whose clock runs
ahead would find other replicas' sagas due early and cancel them; so the orchestrator
reads the time from its database server, the one clock all its replicas share, once per
transaction (each handler, batch and deadline scan asks once and uses that time
throughout).

SQLite has no server and so no clock of its own: the embedded system that uses it is a
single process, whose clock is then the one clock, and is read instead.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.driver import postgres
from ordersaga.db.timestamps import utc_now

# The time of the current statement, in UTC with microseconds. PostgreSQL's now() would
# be the start of the transaction, which may have waited for a lock since.
_SERVER_NOW = {
    "postgresql": text("SELECT statement_timestamp()"),
    "mysql": text("SELECT UTC_TIMESTAMP(6)"),
    "mariadb": text("SELECT UTC_TIMESTAMP(6)"),
}


class SagaClock(Protocol):
    """The current time, as the saga engine sees it, within the caller's transaction."""

    async def now(self, conn: AsyncConnection) -> datetime:
        """The time now, timezone-aware, in UTC."""


@dataclass
class DatabaseClock:
    """The database server's clock (production), plus ``offset``.

    ``offset`` is zero in production; a test moves it forward to skip time on a real
    database. ``process_clock`` is read only where the database has no clock (SQLite).
    """

    offset: timedelta = timedelta(0)
    process_clock: Callable[[], datetime] = field(default=utc_now)

    async def now(self, conn: AsyncConnection) -> datetime:
        statement = _SERVER_NOW.get(conn.dialect.name)
        if statement is None:
            return self.process_clock() + self.offset
        pg = await postgres(conn)
        read = await (pg.value(statement.text) if pg else conn.scalar(statement))
        return _as_utc(read) + self.offset


@dataclass(frozen=True)
class ProcessClock:
    """A clock of this process: ``read`` is called for the time (tests pass their own)."""

    read: Callable[[], datetime] = utc_now

    async def now(self, conn: AsyncConnection) -> datetime:
        del conn
        return self.read()


def _as_utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected the database's time as a datetime, got {value!r}")
    # MariaDB's UTC_TIMESTAMP comes back naive; PostgreSQL's with its offset.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
