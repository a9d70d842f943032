"""The transactional outbox: messages written with the state change, published later.

A service never sends from a handler. :func:`write_outbox` adds the outgoing messages to
the ``outbox`` table inside the caller's transaction; :class:`OutboxRelay` publishes the
rows in insertion order per key and deletes them only once the broker has acknowledged
them. The relay is woken on commit; polling is only the fallback. Woken after a short
round, it lingers (:attr:`RelayLimits.linger`, a millisecond by default) before it
reads, so that the commits that land close together are published in one round: one
transaction, one produce request.

A relay can never wedge its service:

- **Each send is bounded** (``send_timeout``): a broker that does not acknowledge in time
  (unreachable from this replica, a partition short of in-sync replicas...) makes the
  relay abandon the send, roll back and so release its rows, and try again after a
  backoff. Whatever of the abandoned send reaches the broker later is a duplicate that
  consumers' inboxes skip.
- **Lock waits are bounded** (``lock_timeout``, :mod:`ordersaga.db.lock_timeout`).
- **Relays skip each other's rows** (``SKIP LOCKED``) while keeping the order per key
  (:mod:`ordersaga.messaging.outbox_rows`): one relay stuck on one key's rows does not
  stop the other replicas' relays from publishing the other keys.
- **A message that can never be published** (the broker refuses it for good, see
  :mod:`ordersaga.messaging.kafka_errors`) is moved, in the transaction that deletes
  its batch's published rows, to the ``outbox_failed`` table with the error: it is not
  retried in a loop in front of the others, nor dropped. Each is logged as an error and
  counted (:attr:`OutboxRelay.parked`); an operator reads the table, fixes the cause and
  puts the rows back with :func:`~ordersaga.messaging.outbox_rows.requeue`. Later
  messages of its key go on: the saga it belonged to times out and compensates.

A relay asked to :meth:`~OutboxRelay.stop` publishes what is committed by then and
ends: it keeps going while it finds full batches, and returns after a short one (which
took every row committed before its read). Its caller bounds how long that may take.

Each message is published in a span (``publish <topic>``), the child of the span that
wrote its row (the row's ``traceparent``); the record sent carries that span's
``traceparent`` instead, so its consumer's span is the publish span's child.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from opentelemetry.trace import SpanKind
from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.db.lock_timeout import bound_lock_waits
from ordersaga.db.timestamps import UtcDateTime
from ordersaga.db.types import BigId
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.offsets import DEFAULT_COMMIT_EVERY
from ordersaga.messaging.outbox_rows import FAILED_TABLE, OutboxRow, add, claim, park, remove
from ordersaga.messaging.port import OutgoingMessage, Producer, UndeliverableMessages
from ordersaga.observability.recorders import RelayMetrics, ServiceMetrics
from ordersaga.observability.tracing import (
    NO_TRACING,
    Traced,
    Tracing,
    messaging_attributes,
)

log = logging.getLogger(__name__)

DEFAULT_LINGER = 0.001
"""Seconds a relay woken after a short round, or a consumer that polled a short batch,
waits for more before it reads: per-batch work shared, at a millisecond a hop."""


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table, and beside it in ``metadata`` its ``outbox_failed`` table."""
    Table(
        FAILED_TABLE,
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=False),  # its id in the outbox
        Column("topic", String(255), nullable=False),
        Column("message_key", String(255), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("failed_at", UtcDateTime, nullable=False),
    )
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
    """Add ``messages`` to the outbox within the transaction of ``conn``, in their order."""
    await add(conn, table, messages)


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """How long a relay waits on the broker and on row locks, and for more rows after
    a wake-up; and the batching of the service's consumer (from the settings)."""

    send_timeout: float = 10.0
    lock_timeout: float = 5.0
    linger: float = DEFAULT_LINGER
    """Also how long the service's consumer waits for more records after a short poll."""
    commit_every: float = DEFAULT_COMMIT_EVERY
    """For the service's consumer: how long a handled record's offset may wait for its
    commit (:mod:`.offsets`)."""


class PublishTimeout(TimeoutError):
    """The broker did not acknowledge a batch in time; the relay released its rows."""


class OutboxRelay:
    """Publishes a service's outbox. One relay per database connection pool."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        producer: Producer,
        *,
        limits: RelayLimits = RelayLimits(),
        batch_size: int = 500,
        poll_interval: float = 1.0,
        metrics: RelayMetrics | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._engine = engine
        self._tracing = tracing
        self._table = table
        self._producer = producer
        self._limits = limits
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._metrics = metrics or ServiceMetrics.detached(table.name).relay()
        self.published = 0
        self.parked = 0
        self.timeouts = 0
        self._failure: str | None = None
        self._sending_since: float | None = None
        self._stopping = False

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

    def stop(self) -> None:
        """Ask :meth:`run` to publish what is committed, then end."""
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        """Publish until cancelled, or until stopped and the outbox is drained."""
        backoff = Backoff()
        while True:
            # Only a round whose read begins after the stop was asked sees everything
            # committed before it.
            draining = self._stopping
            # Cleared before the read, so a commit that lands after the read has begun
            # sets it again and is picked up on the next round, not at the next poll.
            self._wakeup.clear()
            try:
                published = await self.publish_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except PublishTimeout as error:
                log.warning("%s; retrying", error)
                await backoff.sleep()
                continue
            except Exception:
                log.exception("outbox relay failed; retrying")
                await backoff.sleep()
                continue
            if published >= self._batch_size:
                continue  # more may be waiting; no need for a wake-up to look
            if draining:
                return
            # A short batch took every row committed before the read: reading again now
            # would cost an empty transaction per round under load.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wakeup.wait()
                if self._limits.linger > 0:
                    await asyncio.sleep(self._limits.linger)  # for the commits right behind it

    async def publish_once(self) -> int:
        """Publish one batch of the oldest rows; return how many left the outbox.

        The rows stay locked (``FOR UPDATE``) from read to delete, so relays of several
        replicas of one service never publish the same rows; rows another relay holds
        are skipped, with the later rows of their keys (:mod:`outbox_rows`).
        """
        async with self._engine.begin() as conn:
            await bound_lock_waits(conn, self._limits.lock_timeout)
            rows = await claim(conn, self._table, self._batch_size)
            if not rows:
                return 0
            spans: list[Traced] = []
            if self._tracing.enabled:
                spans = [self._publishing(row) for row in rows]
                rows = [_carrying(row, span) for row, span in zip(rows, spans, strict=True)]
            try:
                errors = await self._send(rows)
            except BaseException as error:
                for span in spans:
                    span.end(error)
                raise
            for row, span in zip(rows, spans, strict=False):
                span.end(UnpublishableMessage(errors[row.id]) if row.id in errors else None)
            if errors:
                await park(conn, self._table, [r for r in rows if r.id in errors], errors)
            await remove(conn, self._table, rows)
        self.published += len(rows) - len(errors)
        self.parked += len(errors)
        for row in rows:
            if row.id in errors:
                _log_parked(row, errors[row.id])
        return len(rows)

    def _publishing(self, row: OutboxRow) -> Traced:
        message = row.message
        return self._tracing.start(
            f"publish {message.topic}",
            SpanKind.PRODUCER,
            message.headers.get(h.TRACEPARENT),
            lambda: messaging_attributes(
                message.topic,
                message.headers,
                message.key,
                {"messaging.operation.type": "publish", "ordersaga.outbox.row": row.id},
            ),
        )

    async def _send(self, rows: list[OutboxRow]) -> dict[int, str]:
        """Publish, keeping :meth:`publish_problem` up to date; the errors of the rows
        that can never be published, by row id."""
        began = self._sending_since = time.monotonic()
        try:
            await self._within_timeout([r.message for r in rows])
        except UndeliverableMessages as undeliverable:
            self._failure = None
            published = len(rows) - len(undeliverable.failures)
            self._metrics.published(published, time.monotonic() - began)
            return {rows[i].id: error for i, error in undeliverable.failures.items()}
        except Exception as error:
            self._failure = f"cannot publish to the broker: {type(error).__name__}: {error}"
            raise
        finally:
            self._sending_since = None
        self._failure = None
        self._metrics.published(len(rows), time.monotonic() - began)
        return {}

    async def _within_timeout(self, messages: list[OutgoingMessage]) -> None:
        """Send; past the send timeout, abandon the send without waiting for it to stop.

        Not ``asyncio.timeout``: that waits for the cancelled send to finish, and a
        producer that is slow to give up would keep the rows locked meanwhile.
        """
        sending = asyncio.ensure_future(self._producer.send_batch(messages))
        try:
            await asyncio.wait({sending}, timeout=self._limits.send_timeout)
        except asyncio.CancelledError:
            sending.cancel()
            raise
        if not sending.done():
            sending.add_done_callback(_forget)
            sending.cancel()
            self.timeouts += 1
            raise PublishTimeout(
                f"the broker did not acknowledge {len(messages)} message(s) within "
                f"{self._limits.send_timeout:g}s; their rows are released"
            )
        sending.result()


class UnpublishableMessage(Exception):
    """What a publish span of a message the broker refuses for good ends with."""


def _carrying(row: OutboxRow, span: Traced) -> OutboxRow:
    """``row`` whose message carries ``span``'s ``traceparent``."""
    headers = {**row.message.headers, h.TRACEPARENT: span.traceparent}
    return OutboxRow(row.id, replace(row.message, headers=headers))


def _forget(task: "asyncio.Future[None]") -> None:
    """Collect an abandoned send's outcome, so it is never reported as lost."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned send failed: %r", task.exception())


def _log_parked(row: OutboxRow, error: str) -> None:
    log.error(
        "message %s to %s (key %s) can never be published: %s; moved to %s",
        row.message.headers.get("message-id", "?"),
        row.message.topic,
        row.message.key,
        error,
        FAILED_TABLE,
    )
