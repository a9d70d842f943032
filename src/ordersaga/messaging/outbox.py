"""The transactional outbox: messages written with the state change, published later.

A service never sends from a handler. :func:`write_outbox` adds the outgoing messages to
the ``outbox`` table inside the caller's transaction; :class:`OutboxRelay` publishes the
rows in insertion order (so in order per key) and deletes them only once the broker has
acknowledged them. The relay is woken on commit; polling is only the fallback.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.db.timestamps import UtcDateTime, utc_now
from ordersaga.db.types import BigId
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.port import OutgoingMessage, Producer

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("topic", String(255), nullable=False),
        Column("message_key", String(255), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )


async def write_outbox(
    conn: AsyncConnection, table: Table, messages: Sequence[OutgoingMessage]
) -> None:
    """Add ``messages`` to the outbox within the transaction of ``conn``."""
    if not messages:
        return
    now = utc_now()
    await conn.execute(
        insert(table),
        [
            {
                "topic": m.topic,
                "message_key": m.key,
                "value": m.value,
                "headers": json.dumps(dict(m.headers)),
                "created_at": now,
            }
            for m in messages
        ],
    )


class OutboxRelay:
    """Publishes a service's outbox. One relay per database."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        producer: Producer,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self._engine = engine
        self._table = table
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """Tell the relay that a transaction with outbox rows has committed."""
        self._wakeup.set()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                while await self.publish_once():
                    pass
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await backoff.sleep()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wakeup.wait()
            self._wakeup.clear()

    async def publish_once(self) -> int:
        """Publish one batch of the oldest rows; return how many were published.

        The rows stay locked (``FOR UPDATE``) from read to delete, so relays of several
        replicas of one service take turns instead of publishing the same rows, or a
        later message of a key before an earlier one.
        """
        table = self._table
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        table.c.id,
                        table.c.topic,
                        table.c.message_key,
                        table.c.value,
                        table.c.headers,
                    )
                    .order_by(table.c.id)
                    .limit(self._batch_size)
                    .with_for_update()
                )
            ).all()
            if not rows:
                return 0
            await self._producer.send_batch(
                [
                    OutgoingMessage(r.topic, r.message_key, r.value, json.loads(r.headers))
                    for r in rows
                ]
            )
            await conn.execute(delete(table).where(table.c.id.in_([r.id for r in rows])))
        self.published += len(rows)
        return len(rows)
