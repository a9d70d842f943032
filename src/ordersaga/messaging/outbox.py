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
import time
from collections.abc import Sequence
from functools import cache

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
from sqlalchemy.sql import Insert

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


@cache
def _insert_into(table: Table) -> Insert:
    # Built once per table: building a statement costs more than running it.
    return insert(table)


async def write_outbox(
    conn: AsyncConnection, table: Table, messages: Sequence[OutgoingMessage]
) -> None:
    """Add ``messages`` to the outbox within the transaction of ``conn``, in their order."""
    if not messages:
        return
    now = utc_now()
    await conn.execute(
        _insert_into(table),
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
        self._failure: str | None = None
        self._sending_since: float | None = None

    def publish_problem(self, slow_after: float = 5.0) -> str | None:
        """Why the broker is not taking this relay's messages, or ``None``.

        Set when a publish failed and none has succeeded since, or when one has waited
        for the broker's acknowledgement longer than ``slow_after`` seconds (a producer
        retries a lost broker for a long time before it gives up).
        """
        since = self._sending_since
        if since is not None and time.monotonic() - since > slow_after:
            return f"the broker has not acknowledged a publish for {slow_after:g}s"
        return self._failure

    def wake(self) -> None:
        """Tell the relay that a transaction with outbox rows has committed."""
        self._wakeup.set()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            # Cleared before the read, so a commit that lands after the read has begun
            # sets it again and is picked up on the next round, not at the next poll.
            self._wakeup.clear()
            try:
                published = await self.publish_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await backoff.sleep()
                continue
            if published >= self._batch_size:
                continue  # more may be waiting; no need for a wake-up to look
            # A short batch took every row committed before the read: reading again now
            # would cost an empty transaction per round under load.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wakeup.wait()

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
            await self._send(
                [
                    OutgoingMessage(r.topic, r.message_key, r.value, json.loads(r.headers))
                    for r in rows
                ]
            )
            await conn.execute(delete(table).where(table.c.id.in_([r.id for r in rows])))
        self.published += len(rows)
        return len(rows)

    async def _send(self, messages: list[OutgoingMessage]) -> None:
        """Publish, keeping :meth:`publish_problem` up to date."""
        self._sending_since = time.monotonic()
        try:
            await self._producer.send_batch(messages)
        except Exception as error:
            self._failure = f"cannot publish to the broker: {type(error).__name__}: {error}"
            raise
        finally:
            self._sending_since = None
        self._failure = None
