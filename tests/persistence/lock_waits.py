"""Seeing, from outside, that a session waits for a row lock: a condition, not a sleep.

PostgreSQL says so itself (``pg_stat_activity.wait_event_type = 'Lock'``). MariaDB's
``information_schema.innodb_trx`` would too, but needs the PROCESS privilege the test
user lacks; its process list, which shows a user's own sessions, does not name the
wait, only the statement running. A locking statement (``FOR UPDATE`` by default, or
the one the test names) seen running while another transaction holds the row cannot
finish before that one ends, so it is waiting (at worst about to: then the test only
proves less, it never fails falsely).
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.support import until_async

_SESSION_ID = {
    "postgresql": text("SELECT pg_backend_pid()"),
    "mysql": text("SELECT CONNECTION_ID()"),
}

_WAITING = {
    "postgresql": text(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = :session AND wait_event_type = 'Lock'"
    ),
    "mysql": text(
        "SELECT count(*) FROM information_schema.processlist "
        "WHERE id = :session AND command = 'Query' AND info LIKE :statement"
    ),
}


async def session_id(conn: AsyncConnection) -> int:
    """The server's id of the session of ``conn``."""
    found = await conn.scalar(_SESSION_ID[conn.dialect.name])
    return int(found)


async def until_waiting_for_a_lock(
    observer: AsyncEngine, session: int, timeout: float = 10.0, statement: str = "FOR UPDATE"
) -> None:
    """Return once ``session`` waits for a row lock; fail after ``timeout`` seconds.

    On MariaDB, ``statement`` is a part of the text of the statement that waits.
    """
    query = _WAITING[observer.dialect.name]
    params: dict[str, object] = {"session": session}
    if observer.dialect.name == "mysql":
        params["statement"] = f"%{statement}%"

    async def waiting() -> bool:
        async with observer.connect() as conn:
            return bool(await conn.scalar(query, params))

    await until_async(waiting, timeout, f"session {session} waiting for a lock")
