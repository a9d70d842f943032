"""Claiming outbox rows for one relay, and parking the ones that can never be published.

Several replicas of a service each run a relay on the same outbox. A relay claims the
oldest rows ``FOR UPDATE SKIP LOCKED``, so a relay stuck on the broker holds only its
own rows, and the others go on with the rest. Skipping alone would break the order per
key (another relay's held row 3 of a key, this relay's row 7 of it), so after claiming
a relay gives back every row of a key that has an earlier row it does not hold: that
earlier row is held by another relay or not yet published, and the later ones wait.
SQLite has no row locks and one writer at a time: there the oldest rows are simply read.

On PostgreSQL and SQLite the statements run every message (adding rows, claiming and
removing them) go through the driver directly (:mod:`ordersaga.db.driver`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Insert

from ordersaga.db.driver import Postgres, driver, insert_sql
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.header_text import headers_of, headers_text
from ordersaga.messaging.port import OutgoingMessage

FAILED_TABLE = "outbox_failed"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    message: OutgoingMessage


def failed_table(outbox: Table) -> Table:
    """Where ``outbox``'s messages that can never be published are kept (same metadata)."""
    return outbox.metadata.tables[FAILED_TABLE]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in an outbox: rows not yet published, the oldest one's age, and the
    messages parked in ``outbox_failed``."""

    waiting: int
    oldest_age: float
    """Seconds; 0 when nothing waits."""
    failed: int


async def backlog(conn: AsyncConnection, outbox: Table) -> Backlog:
    """The backlog of ``outbox`` now (two aggregate reads, no row locked)."""
    waiting, oldest = (
        await conn.execute(select(func.count(), func.min(outbox.c.created_at)))
    ).one()
    failed = failed_table(outbox)
    parked = await conn.scalar(select(func.count()).select_from(failed))
    age = (utc_now() - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(int(waiting), max(0.0, age), int(parked or 0))


_COLUMNS = ("topic", "message_key", "value", "headers", "created_at")


async def add(conn: AsyncConnection, outbox: Table, messages: Sequence[OutgoingMessage]) -> None:
    """Add ``messages`` to ``outbox`` in the transaction of ``conn``, in their order."""
    if not messages:
        return
    now = utc_now()
    rows = [(m.topic, m.key, m.value, headers_text(m.headers), now) for m in messages]
    db = await driver(conn)
    if db is not None:
        await db.execute_many(insert_sql(outbox, _COLUMNS), rows)
    else:
        await conn.execute(
            _insert_into(outbox), [dict(zip(_COLUMNS, r, strict=True)) for r in rows]
        )


@cache
def _insert_into(table: Table) -> Insert:
    # Built once per table: building a statement costs more than running it.
    return insert(table)


async def claim(conn: AsyncConnection, outbox: Table, limit: int) -> list[OutboxRow]:
    """Lock and return up to ``limit`` of the oldest rows this relay may publish now."""
    db = await driver(conn)
    if isinstance(db, Postgres):
        return [_outbox_row(*r) for r in await db.fetch(_claim_sql(outbox.name), limit)]
    if db is not None:  # SQLite: one writer, nothing held elsewhere
        found = await db.fetch(
            f"SELECT id, topic, message_key, value, headers FROM {outbox.name} "
            "ORDER BY id LIMIT $1",
            limit,
        )
        return [_outbox_row(*r) for r in found]
    locking = conn.dialect.name != "sqlite"
    query = (
        select(
            outbox.c.id,
            outbox.c.topic,
            outbox.c.message_key,
            outbox.c.value,
            outbox.c.headers,
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if locking:
        query = query.with_for_update(skip_locked=True)
    rows = [_outbox_row(*r) for r in await conn.execute(query)]
    if locking and rows:
        return await _first_of_their_keys(conn, outbox, rows)
    return rows


@cache
def _claim_sql(table: str) -> str:
    """The claim on PostgreSQL in one statement (one round trip rather than two): the
    oldest rows no other relay holds, locked, less those of a key that has an earlier row
    outside them (held elsewhere, or behind the ``LIMIT``), which stay locked and unsent
    until the transaction ends, as :func:`_first_of_their_keys` does on MariaDB."""
    return (
        f"WITH claimed AS MATERIALIZED ("
        f"SELECT id, topic, message_key, value, headers FROM {table} "
        "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED), "
        "held AS ("
        f"SELECT o.message_key, min(o.id) AS first FROM {table} o "
        "WHERE o.message_key IN (SELECT message_key FROM claimed) "
        "AND o.id < (SELECT max(id) FROM claimed) "
        "AND o.id NOT IN (SELECT id FROM claimed) "
        "GROUP BY o.message_key) "
        "SELECT c.id, c.topic, c.message_key, c.value, c.headers FROM claimed c "
        "LEFT JOIN held h ON h.message_key = c.message_key "
        "WHERE h.first IS NULL OR c.id < h.first ORDER BY c.id"
    )


def _outbox_row(row_id: int, topic: str, key: str, value: bytes, headers: str) -> OutboxRow:
    return OutboxRow(row_id, OutgoingMessage(topic, key, value, headers_of(headers)))


async def _first_of_their_keys(
    conn: AsyncConnection, outbox: Table, rows: list[OutboxRow]
) -> list[OutboxRow]:
    """``rows`` without those that come after a row of their key held elsewhere."""
    ours = [r.id for r in rows]
    keys = {r.message.key for r in rows}
    others = await conn.execute(
        select(outbox.c.id, outbox.c.message_key).where(
            outbox.c.message_key.in_(keys),
            outbox.c.id < max(ours),
            outbox.c.id.not_in(ours),
        )
    )
    held_elsewhere: dict[str, int] = {}
    for row_id, key in others:
        held_elsewhere[key] = min(row_id, held_elsewhere.get(key, row_id))
    return [r for r in rows if r.id < held_elsewhere.get(r.message.key, r.id + 1)]


async def remove(conn: AsyncConnection, outbox: Table, rows: Sequence[OutboxRow]) -> None:
    ids = [r.id for r in rows]
    db = await driver(conn)
    if db is not None:
        await db.execute(f"DELETE FROM {outbox.name} WHERE id = ANY($1)", ids)
    else:
        await conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))


async def park(
    conn: AsyncConnection,
    outbox: Table,
    rows: Sequence[OutboxRow],
    errors: Mapping[int, str],
) -> None:
    """Move ``rows`` to the failed table with their ``errors`` (by row id), in ``conn``'s
    transaction; the caller removes them from the outbox."""
    now = utc_now()
    await conn.execute(
        insert(failed_table(outbox)),
        [
            {
                "id": r.id,
                "topic": r.message.topic,
                "message_key": r.message.key,
                "value": r.message.value,
                "headers": headers_text(r.message.headers),
                "failed_at": now,
                "error": errors[r.id],
            }
            for r in rows
        ],
    )


async def requeue(conn: AsyncConnection, outbox: Table, ids: Sequence[int] | None = None) -> int:
    """Put parked messages (every one, or those of ``ids``) back at the end of the outbox.

    For an operator who has cured the cause (granted the topic, raised the size limit).
    They are published after what the outbox holds now, later messages of their keys
    included; consumers' inboxes and the saga's late-reply handling make that harmless.
    Returns how many were put back.
    """
    failed = failed_table(outbox)
    query = select(
        failed.c.id, failed.c.topic, failed.c.message_key, failed.c.value, failed.c.headers
    ).order_by(failed.c.id)
    if ids is not None:
        query = query.where(failed.c.id.in_(ids))
    rows = (await conn.execute(query.with_for_update())).all()
    if not rows:
        return 0
    now = utc_now()
    await conn.execute(
        insert(outbox),
        [
            {
                "topic": r.topic,
                "message_key": r.message_key,
                "value": r.value,
                "headers": r.headers,
                "created_at": now,
            }
            for r in rows
        ],
    )
    await conn.execute(delete(failed).where(failed.c.id.in_([r.id for r in rows])))
    return len(rows)
