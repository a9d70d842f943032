"""The inbox: the ``message-id`` of every message handled, recorded with its effect."""

from collections.abc import Sequence

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

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

    Two deliveries racing past the check collide on the primary key; the loser's
    transaction fails and, when retried, sees the message as handled.
    """
    return bool(await record_new(conn, table, [(message_id, topic)]))


async def record_new(
    conn: AsyncConnection, table: Table, messages: Sequence[tuple[str, str]]
) -> set[str]:
    """Record the ``(message_id, topic)`` pairs not handled before; their message ids.

    One read and one insert for the lot, in the caller's transaction. A message id given
    twice is recorded once. As with :func:`record_once`, deliveries racing past the read
    collide on the primary key and the loser's transaction fails.
    """
    ids = list(dict.fromkeys(message_id for message_id, _ in messages))
    if not ids:
        return set()
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
