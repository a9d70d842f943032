"""The consumer loop: handler, inbox and outbox in one transaction; offsets after it.

For each record: decode it (poison goes to ``<topic>.DLQ`` and the partition moves on),
then in one database transaction record its ``message-id`` in the inbox, run the
handler and write the messages it sends to the outbox. Offsets are committed only
after those transactions commit, so a crash in between means redelivery, which the
inbox turns into a counted no-op.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts.codec import PoisonMessage, decode
from ordersaga.contracts.messages import WireMessage
from ordersaga.contracts.topics import dead_letter
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.inbox import record_once
from ordersaga.messaging.outbox import write_outbox
from ordersaga.messaging.port import Broker, Consumer, OutgoingMessage, Producer, Record

log = logging.getLogger(__name__)


@dataclass
class HandlerContext:
    """What a handler may touch: its transaction, and a way to send messages from it."""

    conn: AsyncConnection
    cause: Trace
    outgoing: list[OutgoingMessage] = field(default_factory=list)

    def send(self, topic: str, message: WireMessage) -> None:
        """Send ``message`` on ``topic`` if, and only if, this transaction commits."""
        self.outgoing.append(envelope(topic, message, self.cause))


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    topic: str
    handle: Handler


class CrashPoints(Protocol):
    """Where a test may make the loop die as a killed process would."""

    def after_db_commit(self, record: Record) -> bool:
        """True to die after ``record``'s transaction committed, before its offset did."""


class SimulatedCrash(Exception):
    """Raised at a crash point: the consumer is dropped without committing its offsets."""


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    crashes: int = 0


# SQLSTATEs of a database going away or coming back, and of a transaction that lost a
# race and may simply run again. asyncpg reports some of them (57P03, "the database
# system is shutting down", while PostgreSQL restarts) as a plain DBAPIError, which
# would otherwise count as the message's fault and dead-letter it.
_TRANSIENT_SQLSTATE_CLASSES = ("08",)  # connection exception
_TRANSIENT_SQLSTATES = {"57P01", "57P02", "57P03", "40001", "40P01"}


def _causes(error: BaseException) -> list[BaseException]:
    """``error``, the driver's exception under it and what caused those."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 10:
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _transient_sqlstate(error: BaseException) -> bool:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not isinstance(state, str):
        return False
    return state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)


def is_transient(error: BaseException) -> bool:
    """A fault of the surroundings (database or broker away), not of the message."""
    if isinstance(error, OperationalError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return any(
        isinstance(cause, ConnectionError | TimeoutError | OSError) or _transient_sqlstate(cause)
        for cause in _causes(error)
    )


class ConsumerLoop:
    def __init__(
        self,
        *,
        broker: Broker,
        group: str,
        client_id: str,
        engine: AsyncEngine,
        inbox: Table,
        outbox: Table,
        subscriptions: Sequence[Subscription],
        on_commit: Callable[[], None],
        dlq_producer: Producer,
        max_records: int = 200,
        max_failures: int = 5,
        crash_points: CrashPoints | None = None,
    ) -> None:
        self._broker = broker
        self.group = group
        self._client_id = client_id
        self._engine = engine
        self._inbox = inbox
        self._outbox = outbox
        self._handlers = {s.topic: s.handle for s in subscriptions}
        self._on_commit = on_commit
        self._dlq = dlq_producer
        self._max_records = max_records
        self._max_failures = max_failures
        self._crash_points = crash_points
        self.stats = ConsumerStats()

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            consumer = self._broker.consumer(self.group, list(self._handlers), self._client_id)
            try:
                await self._consume(consumer, backoff)
            except SimulatedCrash:
                self.stats.crashes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: consumer failed; reconnecting", self.group)
                await backoff.sleep()
            finally:
                await consumer.close()

    async def _consume(self, consumer: Consumer, backoff: Backoff) -> None:
        while True:
            records = await consumer.poll(self._max_records, timeout=1.0)
            backoff.reset()
            offsets = {}
            for record in records:
                await self._process(record)
                offsets[record.topic_partition] = record.offset + 1
                if self._crash_points and self._crash_points.after_db_commit(record):
                    raise SimulatedCrash(record)
            if offsets:
                await consumer.commit(offsets)

    async def _process(self, record: Record) -> None:
        try:
            message = decode(record.topic, record.value)
            message_id = record.headers.get(h.MESSAGE_ID)
            if not message_id:
                raise PoisonMessage(f"no {h.MESSAGE_ID} header")
        except PoisonMessage as poison:
            await self._dead_letter(record, str(poison))
            return
        handler = self._handlers[record.topic]
        backoff = Backoff()
        failures = 0
        while True:
            try:
                await self._handle_once(record, message, message_id, handler)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not is_transient(error):
                    failures += 1
                    if failures >= self._max_failures:
                        await self._dead_letter(record, f"handler failed: {error!r}")
                        return
                log.warning(
                    "%s: handling %s of saga %s failed (%r); retrying",
                    self.group,
                    record.topic,
                    record.key,
                    error,
                )
                await backoff.sleep()

    async def _handle_once(
        self, record: Record, message: WireMessage, message_id: str, handler: Handler
    ) -> None:
        async with self._engine.begin() as conn:
            if not await record_once(conn, self._inbox, message_id, record.topic):
                self.stats.duplicates += 1
                return
            context = HandlerContext(
                conn, Trace.from_headers(dict(record.headers), message.orderID)
            )
            await handler(context, message)
            await write_outbox(conn, self._outbox, context.outgoing)
        self.stats.handled += 1
        if context.outgoing:
            self._on_commit()

    async def _dead_letter(self, record: Record, reason: str) -> None:
        log.error(
            "%s: %s[%d]@%d is poison, sent to %s: %s",
            self.group,
            record.topic,
            record.partition,
            record.offset,
            dead_letter(record.topic),
            reason,
        )
        headers = dict(record.headers)
        headers.update(
            {
                h.DLQ_ERROR: reason,
                h.DLQ_SOURCE_TOPIC: record.topic,
                h.DLQ_SOURCE_PARTITION: str(record.partition),
                h.DLQ_SOURCE_OFFSET: str(record.offset),
                h.DLQ_CONSUMER: self.group,
            }
        )
        await self._dlq.send_batch(
            [OutgoingMessage(dead_letter(record.topic), record.key, record.value, headers)]
        )
        self.stats.dead_lettered += 1
