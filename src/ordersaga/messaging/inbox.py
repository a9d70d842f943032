"""The inbox: the ``message-id`` of every message handled, recorded with its effect."""

from collections.abc import Sequence

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.driver import Postgres, driver
from ordersaga.db.timestamps import UtcDateTime, utc_now


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_messages",
        metadata,
        Column("message_id", String(64), primary_key=True),
        Column("topic", String(255), nullable=False),
        # Pruned by age (db/retention.py): the index keeps that proportional to what goes.
        Column("processed_at", UtcDateTime, nullable=False, index=True),
    )


async def record_once(conn: AsyncConnection, table: Table, message_id: str, topic: str) -> bool:
    """Record ``message_id`` in the caller's transaction; ``False`` if it was handled before.

    Two deliveries racing past the check: on PostgreSQL the second waits for the first
    and sees the message as handled once it commits; elsewhere they collide on the
    primary key, and the loser's transaction fails and, when retried, sees it handled.
    """
    return bool(await record_new(conn, table, [(message_id, topic)]))


async def record_new(
    conn: AsyncConnection, table: Table, messages: Sequence[tuple[str, str]]
) -> set[str]:
    """Record the ``(message_id, topic)`` pairs not handled before; their message ids.

    In the caller's transaction; a message id given twice is recorded once. On
    PostgreSQL and SQLite one statement inserts the lot, skipping the ids already there:
    on PostgreSQL an id another transaction is inserting at the same moment makes this
    one wait for it, and counts as handled if that one commits (SQLite has one writer at
    a time). On MariaDB one read and one insert: as with :func:`record_once`, deliveries
    racing past the read collide on the primary key and the loser's transaction fails.
    """
    ids = list(dict.fromkeys(message_id for message_id, _ in messages))
    if not ids:
        return set()
    db = await driver(conn)
    if db is not None:
        topic_of = dict(reversed(messages))  # the first topic given for an id
        ordered = sorted(ids)  # two batches wait for each other's ids in one order
        sql = _insert_new_sql(table) if isinstance(db, Postgres) else _sqlite_insert_new(table)
        inserted = await db.fetch(sql, ordered, [topic_of[m] for m in ordered], utc_now())
        return {row[0] for row in inserted}
    seen = set(
        (await conn.scalars(select(table.c.message_id).where(table.c.message_id.in_(ids)))).all()
    )
    new: dict[str, str] = {}
    for message_id, topic in messages:
        if message_id not in seen:
            new.setdefault(message_id, topic)
    if new:
        now = utc_now()
        await conn.execute(
            insert(table),
            [{"message_id": m, "topic": t, "processed_at": now} for m, t in new.items()],
        )
    return set(new)


def _insert_new_sql(table: Table) -> str:
    return (
        f"INSERT INTO {table.name} (message_id, topic, processed_at) "
        "SELECT m.id, m.topic, $3 FROM unnest($1::varchar[], $2::varchar[]) AS m(id, topic) "
        "ORDER BY m.id ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
    )


def _sqlite_insert_new(table: Table) -> str:
    # The two arrays side by side by their index; WHERE true keeps SQLite's parser from
    # reading ON CONFLICT as a join's.
    return (
        f"INSERT INTO {table.name} (message_id, topic, processed_at) "
        "SELECT m.value, t.value, $3 FROM json_each($1) AS m JOIN json_each($2) AS t "
        "ON t.key = m.key WHERE true "
        "ORDER BY m.value ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
    )
