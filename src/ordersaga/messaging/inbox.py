"""The inbox: the ``message-id`` of every message handled, recorded with its effect."""

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.timestamps import UtcDateTime, utc_now


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "processed_messages",
        metadata,
        Column("message_id", String(64), primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("processed_at", UtcDateTime, nullable=False),
    )


async def record_once(conn: AsyncConnection, table: Table, message_id: str, topic: str) -> bool:
    """Record ``message_id`` in the caller's transaction; ``False`` if it was handled before.

    Two deliveries racing past the check collide on the primary key; the loser's
    transaction fails and, when retried, sees the message as handled.
    """
    seen = await conn.scalar(select(table.c.message_id).where(table.c.message_id == message_id))
    if seen is not None:
        return False
    await conn.execute(
        insert(table).values(message_id=message_id, topic=topic, processed_at=utc_now())
    )
    return True
