"""The broker port on Apache Kafka, with aiokafka.

aiokafka's clients must be created inside a running event loop, while the port hands out
producers and consumers from synchronous code (an ``Endpoint`` asks for its producer in
its constructor). So both are created and started lazily, on first use, and
:meth:`KafkaBroker.close` stops whatever its producers and consumers started.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
)
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
    for_code,
)

from ordersaga.config import Settings
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.kafka_config import CONSUMER_OPTIONS, PRODUCER_OPTIONS, client_options
from ordersaga.messaging.kafka_errors import describe, is_fatal_for_producer, is_permanent
from ordersaga.messaging.port import (
    OutgoingMessage,
    Record,
    TopicPartition,
    UndeliverableMessages,
)

log = logging.getLogger(__name__)

# Keys and header values are text in the port and bytes on the wire. Bytes that are not
# UTF-8 (a poison record's) decode to surrogates and encode back to the same bytes, so
# they reach the dead-letter topic unchanged instead of failing the poll.
_TEXT_ERRORS = "surrogateescape"

# A commit refused because the group rebalanced: the partitions may belong to another
# member now, which reads from the last committed offset, so the records are delivered
# again and the inbox makes that harmless.
_REBALANCED = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", _TEXT_ERRORS)


def _decode(raw: bytes | None) -> str:
    return raw.decode("utf-8", _TEXT_ERRORS) if raw is not None else ""


def to_record(consumed: Any) -> Record:
    """The port's :class:`Record` for one aiokafka ``ConsumerRecord``."""
    return Record(
        topic=consumed.topic,
        partition=consumed.partition,
        offset=consumed.offset,
        key=_decode(consumed.key),
        value=consumed.value if consumed.value is not None else b"",
        headers={name: _decode(value) for name, value in consumed.headers},
    )


class KafkaBroker:
    """The broker port on a Kafka cluster described by ``settings``."""

    def __init__(
        self,
        settings: Settings,
        *,
        replication_factor: int = 1,
        topic_ready_timeout: float = 30.0,
    ) -> None:
        self._options = client_options(settings)
        self._replication_factor = replication_factor
        self._topic_ready_timeout = topic_ready_timeout
        self._clients: list[KafkaProducer | KafkaConsumer] = []

    async def create_topics(self, topics: Sequence[str], partitions: int) -> None:
        """Create the topics that do not exist yet, and wait until they have leaders.

        Existing topics are left as they are, whatever their partition count.
        """
        admin = AIOKafkaAdminClient(**self._options)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [topic for topic in dict.fromkeys(topics) if topic not in existing]
            if missing:
                new = [NewTopic(t, partitions, self._replication_factor) for t in missing]
                _raise_topic_errors(await admin.create_topics(new))
                await self._until_ready(admin, missing)
        finally:
            await admin.close()

    async def _until_ready(self, admin: Any, topics: list[str]) -> None:
        """Wait until every partition of ``topics`` has a leader, so they can be used."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._topic_ready_timeout
        while True:
            described = await admin.describe_topics(topics)
            ready = {
                t["topic"]
                for t in described
                if t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
            }
            if ready >= set(topics):
                return
            if loop.time() > deadline:
                raise TimeoutError(f"topics without a leader: {sorted(set(topics) - ready)}")
            await asyncio.sleep(0.1)

    def producer(self) -> "KafkaProducer":
        producer = KafkaProducer(self._options)
        self._track(producer)
        return producer

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> "KafkaConsumer":
        consumer = KafkaConsumer(self._options, group, tuple(topics), client_id)
        self._track(consumer)
        return consumer

    async def offset_ranges(self, topics: Sequence[str]) -> dict[TopicPartition, range]:
        """Asked of the cluster's metadata and offsets, without joining any group."""
        partitions = await self._partitions(topics)
        if not partitions:
            return {}
        consumer = AIOKafkaConsumer(**self._options, enable_auto_commit=False)
        await consumer.start()
        try:
            beginnings = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        return {
            TopicPartition(tp.topic, tp.partition): range(beginnings[tp], ends[tp])
            for tp in partitions
        }

    async def _partitions(self, topics: Sequence[str]) -> list[Any]:
        """The partitions of those of ``topics`` that exist (asking for one not listed
        could create it)."""
        admin = AIOKafkaAdminClient(**self._options)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [topic for topic in dict.fromkeys(topics) if topic in existing]
            described = await admin.describe_topics(wanted) if wanted else []
        finally:
            await admin.close()
        return [
            KafkaTopicPartition(t["topic"], p["partition"])
            for t in described
            if t["error_code"] == 0
            for p in sorted(t["partitions"], key=lambda p: p["partition"])
        ]

    def _track(self, client: "KafkaProducer | KafkaConsumer") -> None:
        # A consumer loop makes a new consumer after every failure: forget the closed ones,
        # so a service that lives through many broker outages does not keep them all.
        self._clients = [c for c in self._clients if not c.closed]
        self._clients.append(client)

    async def close(self) -> None:
        """Stop every producer and consumer this broker handed out (closing twice is fine)."""
        clients, self._clients = self._clients, []
        for client in clients:
            await client.close()


def _raise_topic_errors(response: Any) -> None:
    for error in response.topic_errors:
        topic, code = error[0], error[1]
        if code == 0:
            continue
        error_type = for_code(code)
        if error_type is TopicAlreadyExistsError:  # created meanwhile by another replica
            continue
        message = error[2] if len(error) > 2 else ""
        raise error_type(f"cannot create topic {topic!r}: {message}")


ProducerFactory = Callable[..., Any]
"""Makes an aiokafka producer from its options (``AIOKafkaProducer``; a fake in tests)."""


class KafkaProducer:
    """An idempotent producer (``acks=all``), started on first send.

    A failure that leaves the aiokafka instance unusable (see
    :mod:`~ordersaga.messaging.kafka_errors`) makes the next send start a new instance,
    after a capped backoff; :attr:`replaced` counts them. A message refused for good is
    reported in :class:`UndeliverableMessages` while the rest of its batch is delivered.
    """

    def __init__(
        self,
        options: Mapping[str, Any],
        *,
        factory: ProducerFactory = AIOKafkaProducer,
        backoff: Backoff | None = None,
    ) -> None:
        self._options = options
        self._factory = factory
        self._backoff = backoff or Backoff(first=0.5, cap=30.0)
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._broken = False
        self.replaced = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def _started(self) -> Any:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the producer is closed")
            if self._producer is None:
                if self._broken:
                    await self._backoff.sleep()  # a cluster that fences every new one
                producer = self._factory(**self._options, **PRODUCER_OPTIONS)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()  # releases the connections of a failed start
                    raise
                self._producer = producer
            return self._producer

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish ``messages`` in order; return once the broker acknowledged every one.

        Raises :class:`UndeliverableMessages` when only messages refused for good
        failed. Cancelled, it stops waiting at once: what was handed to the client may
        still be delivered later.
        """
        if not messages:
            return
        producer = await self._started()
        deliveries: dict[int, asyncio.Future[Any]] = {}
        refused: dict[int, BaseException] = {}
        try:
            for index, message in enumerate(messages):
                try:
                    deliveries[index] = await producer.send(
                        message.topic,
                        message.value,
                        key=_encode(message.key),
                        headers=[(n, _encode(v)) for n, v in message.headers.items()],
                    )
                except Exception as error:  # refused before sending (too large...)
                    refused[index] = error
                    if not is_permanent(error):
                        break
            # Even when a send failed, wait for what was handed over: every delivery's
            # outcome is collected, and nothing of this batch is in flight on return.
            outcomes = await asyncio.gather(*deliveries.values(), return_exceptions=True)
        except asyncio.CancelledError:
            for delivery in deliveries.values():
                delivery.cancel()
            raise
        for index, outcome in zip(deliveries, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                refused[index] = outcome
        await self._raise_failures(producer, refused, len(messages))

    async def _raise_failures(
        self, producer: Any, refused: Mapping[int, BaseException], sent: int
    ) -> None:
        if not refused:
            self._broken = False
            self._backoff.reset()
            return
        for error in refused.values():
            if is_fatal_for_producer(error):
                await self._replace(producer, error, sent)
                raise error
        for error in refused.values():
            if not is_permanent(error):
                raise error
        raise UndeliverableMessages({i: describe(e) for i, e in sorted(refused.items())})

    async def _replace(self, producer: Any, error: BaseException, sent: int) -> None:
        """Drop an instance that can publish nothing more; the next send starts anew."""
        async with self._lock:
            if self._producer is not producer:
                return  # replaced already, by a send that failed alongside this one
            self._producer = None
            self._broken = True
            self.replaced += 1
        log.error(
            "the Kafka producer is unusable after %s; replacing it (%d message(s) of "
            "the failed batch waiting)",
            describe(error),
            sent,
        )
        # Its sender has stopped: stopping it only releases its connections, but do
        # not let a broker that does not answer keep the relay waiting for that.
        stopping = asyncio.ensure_future(producer.stop())
        stopping.add_done_callback(_retrieve)
        await asyncio.wait({stopping}, timeout=5.0)

    async def close(self) -> None:
        """Deliver what is pending, then disconnect."""
        async with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


def _retrieve(task: "asyncio.Future[Any]") -> None:
    """Collect the outcome of a task left to finish alone, so it is never reported lost."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("abandoned task failed: %r", task.exception())


class KafkaConsumer:
    """A member of consumer group ``group``; it joins on its first poll."""

    def __init__(
        self, options: Mapping[str, Any], group: str, topics: tuple[str, ...], client_id: str
    ) -> None:
        self._options = options
        self.group = group
        self.topics = topics
        self.client_id = client_id
        self._consumer: Any = None
        self._starting: asyncio.Task[None] | None = None
        self._closed = False
        self._next: dict[TopicPartition, int] = {}
        """Per partition read from, the offset after the last record returned."""

    @property
    def closed(self) -> bool:
        return self._closed

    def assignment(self) -> set[TopicPartition]:
        """The partitions this member holds now; none while it joins or rebalances."""
        if self._consumer is None:
            return set()
        return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def _joined(self, timeout: float) -> bool:
        """Start joining the group if not yet; True once joined, False if still joining."""
        if self._starting is None:
            self._consumer = AIOKafkaConsumer(
                *self.topics,
                group_id=self.group,
                client_id=self.client_id,
                **self._options,
                **CONSUMER_OPTIONS,
            )
            # In a task, so a poll waits no longer than its timeout even while the group
            # is still forming; the next poll picks up where this one left off.
            self._starting = asyncio.create_task(
                self._consumer.start(), name=f"kafka-join-{self.client_id}"
            )
        if not self._starting.done():
            await asyncio.wait({self._starting}, timeout=timeout)
            if not self._starting.done():
                return False
        self._starting.result()  # the error of a failed start, if any
        return True

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""
        if self._closed:
            raise RuntimeError(f"consumer {self.client_id} is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await self._joined(timeout):
            return []
        remaining = max(0.0, deadline - loop.time())
        batches = await self._consumer.getmany(
            timeout_ms=int(remaining * 1000), max_records=max_records
        )
        records = [to_record(consumed) for batch in batches.values() for consumed in batch]
        for record in records:
            self._next[record.topic_partition] = record.offset + 1
        return records

    def lag(self) -> dict[TopicPartition, int]:
        """From the end offsets the fetches brought (aiokafka's ``highwater``)."""
        held = self.assignment()
        # A partition that moved to another member is forgotten: if it comes back, its
        # position is known again from the first record read.
        self._next = {tp: position for tp, position in self._next.items() if tp in held}
        lag: dict[TopicPartition, int] = {}
        for tp, position in self._next.items():
            end = self._consumer.highwater(KafkaTopicPartition(*tp))
            if end is not None:
                lag[tp] = max(0, end - position)
        return lag

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` for the partitions this member still holds.

        Partitions that moved to another member in a rebalance are left out, and a commit
        the group refuses because it is rebalancing is logged and dropped: in both cases
        the new owner reads from the last committed offset, and the inbox turns the
        redelivery into a no-op. Any other error is raised.
        """
        if self._closed or self._starting is None or not self._starting.done():
            return
        held = self.assignment()
        owned = {
            KafkaTopicPartition(tp.topic, tp.partition): offset
            for tp, offset in offsets.items()
            if TopicPartition(*tp) in held
        }
        if len(owned) < len(offsets):
            log.info(
                "%s: not committing %s: moved to another member",
                self.client_id,
                sorted(set(offsets) - held),
            )
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except _REBALANCED as error:
            log.warning(
                "%s: commit refused, the group rebalanced (%s); the records will be "
                "delivered again",
                self.client_id,
                type(error.__cause__ or error).__name__,
            )

    async def close(self) -> None:
        """Leave the group without committing anything more."""
        if self._closed:
            return
        self._closed = True
        starting = self._starting
        if starting is not None and not starting.done():
            starting.cancel()
        if starting is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        if self._consumer is not None:
            await self._consumer.stop()
