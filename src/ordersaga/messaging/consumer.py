"""The consumer loop: handlers, inbox and outbox in one transaction; offsets after it.

Each polled batch is decoded first (poison goes to ``<topic>.DLQ`` and the partition
moves on). The rest is handled in one database transaction (:mod:`.batch`): inbox,
handlers and outbox together. Offsets are committed only after that transaction
commits, so a crash in between means redelivery, which the inbox turns into a counted
no-op. When the batch fails for a reason of its own (not a database that is away), it is
rolled back and its records are handled again one by one, each in its own transaction,
so that one bad record is retried and dead-lettered alone while the others go through.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts.codec import PoisonMessage, decode
from ordersaga.contracts.topics import dead_letter
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.batch import BatchOutcome, handle_batch
from ordersaga.messaging.handler import Decoded, Subscription
from ordersaga.messaging.port import (
    Broker,
    Consumer,
    OutgoingMessage,
    Producer,
    Record,
    TopicPartition,
)
from ordersaga.messaging.transient import is_transient

log = logging.getLogger(__name__)


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
    batches: int = 0
    """Batches committed in one transaction."""
    fallbacks: int = 0
    """Batches rolled back and handled again record by record."""


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the last of ``records``."""
    return {record.topic_partition: record.offset + 1 for record in records}


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
        max_records: int = 500,
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
        # Only for a whole batch: a record handled on its own uses its plain handler.
        self._batch_handlers = {
            s.topic: s.handle_batch for s in subscriptions if s.handle_batch is not None
        }
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
            if not records:
                continue
            decoded = [item for record in records if (item := await self._decoded(record))]
            if decoded and not await self._batch(decoded):
                await self._one_by_one(decoded)
            else:
                self._crash_points_after(records)
            await consumer.commit(next_offsets(records))

    def _crash_points_after(self, records: Sequence[Record]) -> None:
        if self._crash_points is None:
            return
        for record in records:
            if self._crash_points.after_db_commit(record):
                raise SimulatedCrash(record)

    async def _decoded(self, record: Record) -> Decoded | None:
        """``record`` decoded; None, once it is dead-lettered, if it is poison."""
        try:
            message = decode(record.topic, record.value)
            message_id = record.headers.get(h.MESSAGE_ID)
            if not message_id:
                raise PoisonMessage(f"no {h.MESSAGE_ID} header")
        except PoisonMessage as poison:
            await self._dead_letter(record, str(poison))
            return None
        return Decoded(record, message, message_id)

    async def _batch(self, items: Sequence[Decoded]) -> bool:
        """Handle ``items`` in one transaction, retrying while the database is away.

        False when the batch failed for another reason; nothing of it was committed.
        """
        backoff = Backoff()
        while True:
            try:
                outcome = await handle_batch(
                    self._engine,
                    self._inbox,
                    self._outbox,
                    items,
                    self._handlers,
                    self._batch_handlers,
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not is_transient(error):
                    log.warning(
                        "%s: a batch of %d failed (%r); handling its records one by one",
                        self.group,
                        len(items),
                        error,
                    )
                    self.stats.fallbacks += 1
                    return False
                log.warning("%s: a batch failed (%r); retrying", self.group, error)
                await backoff.sleep()
                continue
            self._committed(outcome)
            self.stats.batches += 1
            return True

    def _committed(self, outcome: BatchOutcome) -> None:
        self.stats.handled += outcome.handled
        self.stats.duplicates += outcome.duplicates
        if outcome.sent:
            self._on_commit()

    async def _one_by_one(self, items: Sequence[Decoded]) -> None:
        for item in items:
            await self._process(item)
            if self._crash_points and self._crash_points.after_db_commit(item.record):
                raise SimulatedCrash(item.record)

    async def _process(self, item: Decoded) -> None:
        """Handle one record in a transaction of its own; dead-letter it if it keeps failing."""
        record = item.record
        backoff = Backoff()
        failures = 0
        while True:
            try:
                self._committed(
                    await handle_batch(
                        self._engine, self._inbox, self._outbox, [item], self._handlers
                    )
                )
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
