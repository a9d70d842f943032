"""The consumer loop: handlers, inbox and outbox in one transaction; offsets after it.

**Only the message's own fault makes poison.** A record is dead-lettered (sent to
``<topic>.DLQ`` with the reason in its headers, its offset then committed) only when

- it cannot be read: not UTF-8 JSON, not its topic's schema, no ``message-id``, a
  ``schema-version`` that is not a version (:class:`~ordersaga.contracts.codec.PoisonMessage`); or
- its handler says the message itself is invalid, by raising
  :class:`~ordersaga.messaging.handler.InvalidMessage`; the rest of its batch goes through.

Every other failure — the database, the broker or the network away, a pool, lock or
statement timeout, a deadlock, a cancelled statement, an unexpected exception (a bug)
— is retried with capped exponential backoff for as long as it lasts. No offset is
committed for work not done meanwhile; the failure is counted (:class:`ConsumerStats`)
and logged, the first time with the error and then once a minute
(:class:`~ordersaga.messaging.retry.Retrying`), never a line per attempt.

A message of a ``schema-version`` newer than this consumer reads is not poison either:
it is for a newer replica. Nothing from it on in its partition is handled or committed;
the consumer says so once, leaves the group and joins again after a backoff, until a
replica that reads that version (after a rolling deploy) takes the partition.

**A short batch lingers.** A poll that brings fewer records than a batch holds waits
``linger`` seconds (a millisecond by default) and takes what arrived meanwhile into the
same batch: the per-batch work (transaction, inbox read, outbox insert, offset commit,
the relay round it wakes) is then shared by the records that come close together
instead of paid for each. One wait per batch, never a poll loop.

Each polled batch is handled in one unit of work (:mod:`.batch`): inbox, handlers and
outbox together, the relay woken after it commits. Offsets are committed only after that transaction
commits, so a crash in between means redelivery, which the inbox turns into a counted
no-op; and at most every ``commit_every`` seconds (half a second by default), or when a
poll finds nothing more, rather than after each batch (:mod:`.offsets`).

:meth:`ConsumerLoop.stop` ends the loop cleanly: no more polls; a batch in hand is
handled and its offsets committed; then the consumer leaves its group, so its partitions
go to the other members at once rather than after a session timeout. A loop waiting on
a poll or a backoff, with nothing in hand, is cancelled there at once.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ordersaga.contracts import headers as h
from ordersaga.contracts.codec import NewerSchema, PoisonMessage, check_schema_version, decode
from ordersaga.contracts.topics import dead_letter
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.batch import BatchOutcome, handle_batch
from ordersaga.messaging.handler import Decoded, InvalidMessage, Subscription
from ordersaga.messaging.offsets import DEFAULT_COMMIT_EVERY, PendingOffsets
from ordersaga.messaging.outbox import DEFAULT_LINGER
from ordersaga.messaging.port import (
    Broker,
    Consumer,
    OutgoingMessage,
    Producer,
    Record,
    TopicPartition,
)
from ordersaga.messaging.retry import Retrying, RetryStats
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.logs import log_context, trace_id_of
from ordersaga.observability.recorders import ConsumerMetrics, ServiceMetrics

LAG_EVERY = 1.0
"""Seconds between two updates of the lag metric (read after a committed batch)."""

COMMIT_ON_LEAVING = 2.0
"""Seconds a consumer leaving its group waits to commit the offsets it still holds."""

log = logging.getLogger(__name__)


class CrashPoints(Protocol):
    """Where a test may make the loop die as a killed process would."""

    def after_db_commit(self, record: Record) -> bool:
        """True to die after ``record``'s transaction committed, before its offset did."""


class SimulatedCrash(Exception):
    """Raised at a crash point: the consumer is dropped without committing its offsets."""


class WaitingForNewerReader(Exception):
    """Records of a schema version this consumer does not read hold their partitions."""

    def __init__(self, held: dict[TopicPartition, tuple[Record, NewerSchema]]) -> None:
        super().__init__(
            ", ".join(f"{r.topic}[{r.partition}]@{r.offset}" for r, _ in held.values())
        )
        self.held = held


@dataclass
class ConsumerStats(RetryStats):
    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    crashes: int = 0
    batches: int = 0
    """Batches committed in one transaction."""
    newer_schema: int = 0
    """Times a partition was held by a message of a schema version this consumer does not read."""


@dataclass
class _Polled:
    """A polled batch sorted out: what to handle, what is done, what waits."""

    readable: list[Decoded] = field(default_factory=list)
    done: list[Record] = field(default_factory=list)
    """Records whose offsets may be committed once the readable ones are handled."""
    held: dict[TopicPartition, tuple[Record, NewerSchema]] = field(default_factory=dict)


class ConsumerLoop:
    def __init__(
        self,
        *,
        broker: Broker,
        group: str,
        client_id: str,
        transactions: Transactions,
        subscriptions: Sequence[Subscription],
        dlq_producer: Producer,
        max_records: int = 500,
        crash_points: CrashPoints | None = None,
        schema_version: str = h.CURRENT_SCHEMA_VERSION,
        metrics: ConsumerMetrics | None = None,
        linger: float = DEFAULT_LINGER,
        commit_every: float = DEFAULT_COMMIT_EVERY,
    ) -> None:
        self._broker = broker
        self._linger = linger
        self._pending = PendingOffsets(commit_every)
        self.group = group
        self._client_id = client_id
        self._transactions = transactions
        self._handlers = {s.topic: s.handle for s in subscriptions}
        self._models = {s.topic: s.model for s in subscriptions}
        self._dlq = dlq_producer
        self._max_records = max_records
        self._crash_points = crash_points
        self._schema_version = schema_version
        self.stats = ConsumerStats()
        self.metrics = metrics or ServiceMetrics.detached(group).consumer(group)
        self._lag_read_at = 0.0
        self._lag_known: set[TopicPartition] = set()
        self._reported_held: set[tuple[str, int, int]] = set()
        self._stopping = False
        self._idle = False
        """Polling or backing off, with no record in hand: a stop may cancel the loop."""
        self._running: asyncio.Task[Any] | None = None

    @property
    def idle(self) -> bool:
        """Polling or backing off, with no record in hand."""
        return self._idle

    def stop(self) -> None:
        """Ask :meth:`run` to end once the batch in hand (if any) is committed."""
        self._stopping = True
        if self._idle and self._running is not None:
            self._running.cancel()

    async def run(self) -> None:
        """Consume until cancelled, or until :meth:`stop` is called and the batch in hand
        is done; the consumer always leaves its group on the way out."""
        self._running = asyncio.current_task()
        with log_context(group=self.group):
            await self._run()

    async def _run(self) -> None:
        consuming = self._retrying(f"{self.group}: consuming")
        waiting = Backoff(first=1.0, cap=30.0)
        while not self._stopping:
            consumer = self._broker.consumer(self.group, list(self._handlers), self._client_id)
            try:
                await self._consume(consumer, consuming, waiting)
            except SimulatedCrash:
                self._pending.drop()  # a crash commits nothing more
                self.stats.crashes += 1
            except WaitingForNewerReader as held:
                self._report_held(held)
                await consumer.close()  # leave the group, so that another may take these
                if not self._stopping:
                    with self._idling():
                        await waiting.sleep()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self._stopping:
                    with self._idling():
                        await consuming.failed(error)
            finally:
                await self._leave(consumer)

    async def _leave(self, consumer: Consumer) -> None:
        """Close ``consumer``, committing first the offsets it holds, if that takes no
        more than a moment: those it cannot commit mean their records come again. After
        a crash it holds none."""
        try:
            if self._pending:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(COMMIT_ON_LEAVING):
                        await self._pending.commit(consumer)
        finally:
            self._pending.drop()
            await consumer.close()

    @contextlib.contextmanager
    def _idling(self) -> Iterator[None]:
        """While in here, :meth:`stop` cancels the loop (there is nothing to finish);
        callers enter only when no stop was asked for, with no await in between."""
        self._idle = True
        try:
            yield
        finally:
            self._idle = False

    async def _consume(self, consumer: Consumer, consuming: Retrying, waiting: Backoff) -> None:
        while not self._stopping:
            with self._idling():
                records = await consumer.poll(self._max_records, timeout=self._pending.wait(1.0))
            consuming.succeeded()
            if not records:
                await self._pending.commit(consumer)  # nothing more came meanwhile
                self._read_lag(consumer)
                continue
            records += await self._lingered(consumer, len(records))
            self.metrics.batch(len(records))
            polled = await self._sort_out(records)
            if polled.readable:
                await self._handle(polled.readable)
            self._crash_points_after(polled.done)
            await self._pending.handled(consumer, polled.done, at_once=bool(polled.held))
            if polled.held:
                raise WaitingForNewerReader(polled.held)
            self._read_lag(consumer)
            waiting.reset()
            self._reported_held.clear()

    async def _lingered(self, consumer: Consumer, have: int) -> list[Record]:
        """For a batch of ``have`` records short of a full one, what arrives within the
        linger: the records after them, in order."""
        if self._linger <= 0 or have >= self._max_records:
            return []
        await asyncio.sleep(self._linger)
        return await consumer.poll(self._max_records - have, timeout=0)

    def _retrying(self, what: str) -> Retrying:
        return Retrying(what, self.stats, log, counted=self.metrics.retried)

    def _read_lag(self, consumer: Consumer) -> None:
        """Update the lag metric, at most every :data:`LAG_EVERY` seconds; a partition
        no longer held reads 0 here (its new owner reports it)."""
        now = time.monotonic()
        if now - self._lag_read_at < LAG_EVERY:
            return
        self._lag_read_at = now
        lag = consumer.lag()
        for tp in self._lag_known - lag.keys():
            self.metrics.lag(tp.topic, tp.partition, 0)
        for tp, behind in lag.items():
            self.metrics.lag(tp.topic, tp.partition, behind)
        self._lag_known = set(lag)

    def _crash_points_after(self, records: Sequence[Record]) -> None:
        if self._crash_points is None:
            return
        for record in records:
            if self._crash_points.after_db_commit(record):
                raise SimulatedCrash(record)

    async def _sort_out(self, records: Sequence[Record]) -> _Polled:
        """Decode ``records``, dead-lettering poison; a newer version holds its partition."""
        polled = _Polled()
        for record in records:
            if polled.held and record.topic_partition in polled.held:
                continue
            try:
                check_schema_version(record.headers.get(h.SCHEMA_VERSION), self._schema_version)
                message = decode(record.topic, record.value, self._models[record.topic])
                message_id = record.headers.get(h.MESSAGE_ID)
                if not message_id:
                    raise PoisonMessage(f"no {h.MESSAGE_ID} header")
            except NewerSchema as newer:
                polled.held[record.topic_partition] = (record, newer)
                continue
            except PoisonMessage as poison:
                await self._dead_letter(record, str(poison))
            else:
                polled.readable.append(Decoded(record, message, message_id))
            polled.done.append(record)
        return polled

    async def _handle(self, items: Sequence[Decoded]) -> None:
        """Handle ``items`` in one transaction, retrying until it commits.

        A record its handler finds invalid is dead-lettered and the others are tried again.
        """
        pending = list(items)
        retrying = self._retrying(f"{self.group}: handling a batch of {len(pending)}")
        while pending:
            began = time.perf_counter()
            try:
                outcome = await handle_batch(
                    self._transactions, pending, self._handlers, self.group
                )
            except asyncio.CancelledError:
                raise
            except InvalidMessage as invalid:
                found = [i for i in pending if i.message_id == invalid.message_id]
                if not found:  # the handler did not say which: a bug in it
                    await retrying.failed(invalid)
                    continue
                pending.remove(found[0])
                await self._dead_letter(found[0].record, f"invalid message: {invalid.reason}")
                continue
            except Exception as error:
                await retrying.failed(error)
                continue
            retrying.succeeded()
            self.metrics.transaction(time.perf_counter() - began)
            self._committed(outcome)
            return

    def _committed(self, outcome: BatchOutcome) -> None:
        self.stats.batches += 1
        self.stats.handled += outcome.handled
        self.stats.duplicates += outcome.duplicates
        for (topic, result), count in outcome.by_topic.items():
            self.metrics.consumed(topic, result, count)

    def _report_held(self, waiting: WaitingForNewerReader) -> None:
        self.stats.newer_schema += 1
        for record, newer in waiting.held.values():
            where = (record.topic, record.partition, record.offset)
            if where in self._reported_held:
                continue
            self._reported_held.add(where)
            log.warning(
                "%s: %s[%d]@%d has %s; not poison: leaving it, and its partition, to a replica"
                " that reads it (retrying until one does)",
                self.group,
                *where,
                newer,
            )

    async def _dead_letter(self, record: Record, reason: str) -> None:
        with log_context(
            message_id=record.headers.get(h.MESSAGE_ID),
            saga_id=record.headers.get(h.SAGA_ID),
            trace_id=trace_id_of(record.headers.get(h.TRACEPARENT)),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        ):
            await self._send_dead_letter(record, reason)

    async def _send_dead_letter(self, record: Record, reason: str) -> None:
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
        letter = OutgoingMessage(dead_letter(record.topic), record.key, record.value, headers)
        retrying = self._retrying(f"{self.group}: sending to {letter.topic}")
        while True:
            try:
                await self._dlq.send_batch([letter])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await retrying.failed(error)
                continue
            retrying.succeeded()
            self.stats.dead_lettered += 1
            self.metrics.consumed(record.topic, "dead_lettered")
            return
