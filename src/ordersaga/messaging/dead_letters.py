"""Dead letters: reading them back from ``<topic>.DLQ`` and replaying them, through the port.

**Reading.** First the topics' offset ranges are asked (no group needed): partitions
that hold nothing are not read at all, so an empty listing returns at once. The rest are
read as any new consumer group reads them: a consumer in a group of its own
(``dlq-inspector-<uuid>``) starts at the beginning and polls. It commits nothing, so the
group leaves no offsets behind and never disturbs a service's group. *Caught up* means:
every partition read up to the end it had when reading began; or, should the last
offsets never come as records (a transaction's markers take offsets too), the first poll
that waits ``quiet`` seconds and gets nothing once records have arrived; if nothing at all
arrives within ``patience`` seconds, the reader gives up. A record appended while reading
may or may not be included.

**Replaying.** A dead letter is published again to its source topic (``dlq-source-topic``)
with its key and value, its original headers without the ``dlq-*`` ones, and
``dlq-replayed-from: <dlq topic>/<partition>/<offset>``. Nothing is removed from the
dead-letter topic (Kafka cannot), so the header is what tells a replay from the original.

The ``message-id`` is kept by default, which makes a replay idempotent. A message is
dead-lettered only when its transaction rolled back, so its id is not in the consumer's
inbox and a replay is handled; but when the same message was also delivered and handled
after all (redelivered after a crash, or published twice by an outbox relay), the inbox
recognises the replay as the duplicate it is, instead of applying the effect twice. For
the same reason, replaying a dead letter twice applies it once. A new id is minted only
on request, for the rare case where an effect must be applied again.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from uuid import NAMESPACE_URL, uuid4, uuid5

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.topics import DLQ_SUFFIX, dead_letter
from ordersaga.messaging.port import Broker, OutgoingMessage, Record

DLQ_HEADER_PREFIX: Final = "dlq-"
INSPECTOR_GROUP_PREFIX: Final = "dlq-inspector-"
_BATCH = 500


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How long reading a topic waits: see the module's note on *caught up*."""

    patience: float
    """Seconds to wait for a first record before taking the topics to be empty."""
    quiet: float
    """Seconds without a record, once records arrived, that mean the end was reached."""


class DeadLetterError(Exception):
    """A dead letter that is not there, or a record that is not a dead letter."""


class NoSuchRecord(DeadLetterError):
    pass


class NotADeadLetter(DeadLetterError):
    pass


class UnknownDeadLetterTopic(DeadLetterError):
    """A name that is no dead-letter topic of the contract."""


DLQ_TOPICS: Final = [dead_letter(topic) for topic in topics.ALL]
"""Every dead-letter topic of the contract."""

# Empty topics are skipped without reading (their offsets say so). For the others, on
# Kafka a new consumer group takes a moment to form, and until it has, a poll says
# nothing; the in-process broker answers at once.
KAFKA_LIMITS: Final = ReadLimits(patience=10.0, quiet=1.0)
EMBEDDED_LIMITS: Final = ReadLimits(patience=0.1, quiet=0.05)


def dead_letter_topic(name: str, *, source_ok: bool = False) -> str:
    """The contract's dead-letter topic ``name`` names (or, with ``source_ok``, whose
    source topic it names); :class:`UnknownDeadLetterTopic` otherwise."""
    if name in DLQ_TOPICS:
        return name
    if name in topics.ALL:
        if source_ok:
            return dead_letter(name)
        raise UnknownDeadLetterTopic(
            f"{name} is not a dead-letter topic: its dead letters are on {name}.DLQ"
        )
    raise UnknownDeadLetterTopic(
        f"unknown dead-letter topic {name!r}; one of {', '.join(DLQ_TOPICS)}"
    )


def address(topic: str, partition: int | str, offset: int | str) -> str:
    """``topic/partition/offset``: how a record is named in headers and messages."""
    return f"{topic}/{partition}/{offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record of a dead-letter topic, and what its ``dlq-*`` headers say about it."""

    record: Record

    @property
    def address(self) -> str:
        return address(self.record.topic, self.record.partition, self.record.offset)

    @property
    def source_topic(self) -> str | None:
        return self.record.headers.get(h.DLQ_SOURCE_TOPIC) or None

    @property
    def source_address(self) -> str:
        """Where the record was when it failed (``?`` for what the headers do not say)."""
        headers = self.record.headers
        return address(
            headers.get(h.DLQ_SOURCE_TOPIC) or "?",
            headers.get(h.DLQ_SOURCE_PARTITION) or "?",
            headers.get(h.DLQ_SOURCE_OFFSET) or "?",
        )

    @property
    def error(self) -> str:
        return self.record.headers.get(h.DLQ_ERROR, "")

    @property
    def consumer(self) -> str:
        return self.record.headers.get(h.DLQ_CONSUMER, "")


@dataclass(frozen=True, slots=True)
class Inspection:
    """The dead letters read, and, if the source topics were read too, their replays."""

    letters: list[DeadLetter]
    replays: Counter[str] | None = None
    """How many replays of each dead letter (by address) are on the source topics."""

    def replays_of(self, letter: DeadLetter) -> int | None:
        """How often ``letter`` was replayed; ``None`` when that was not looked up."""
        return None if self.replays is None else self.replays[letter.address]

    def counts(self) -> Counter[str]:
        """The number of dead letters per dead-letter topic."""
        return Counter(letter.record.topic for letter in self.letters)


def source_of(dlq_topic: str) -> str:
    """The topic whose dead letters ``dlq_topic`` holds."""
    return dlq_topic.removesuffix(DLQ_SUFFIX)


async def read_topics(
    broker: Broker, topics: Sequence[str], limits: ReadLimits
) -> AsyncGenerator[Record, None]:
    """Every record of ``topics`` from the beginning, until caught up (see the module).

    Close the iterator (``contextlib.aclosing``) when leaving it early, so the consumer
    leaves its group at once.
    """
    ends = {tp: held.stop for tp, held in (await broker.offset_ranges(topics)).items() if held}
    if not ends:
        return
    group = f"{INSPECTOR_GROUP_PREFIX}{uuid4()}"
    consumer = broker.consumer(group, sorted({tp.topic for tp in ends}), client_id=group)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.patience
    received = False
    try:
        while ends:
            wait = limits.quiet if received else max(0.0, deadline - loop.time())
            batch = await consumer.poll(_BATCH, wait)
            for record in batch:
                yield record
                if record.offset + 1 >= ends.get(record.topic_partition, 0):
                    ends.pop(record.topic_partition, None)
            if batch:
                received = True
            elif received or loop.time() >= deadline:
                return
    finally:
        await consumer.close()


def _position(record: Record) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


async def inspect(
    broker: Broker,
    dlq_topics: Sequence[str],
    limits: ReadLimits,
    *,
    count_replays: bool = False,
) -> Inspection:
    """The dead letters on ``dlq_topics``, in topic, partition and offset order.

    With ``count_replays``, the source topics are read too, in full (which may be long
    on a busy cluster), to count the replays of each dead letter.
    """
    sources = [source_of(t) for t in dlq_topics] if count_replays else []
    wanted = set(dlq_topics)
    letters: list[Record] = []
    replays: Counter[str] = Counter()
    async with contextlib.aclosing(read_topics(broker, [*dlq_topics, *sources], limits)) as read:
        async for record in read:
            if record.topic in wanted:
                letters.append(record)
            elif origin := record.headers.get(h.DLQ_REPLAYED_FROM):
                replays[origin] += 1
    return Inspection(
        letters=[DeadLetter(r) for r in sorted(letters, key=_position)],
        replays=replays if count_replays else None,
    )


async def find_dead_letter(
    broker: Broker, dlq_topic: str, partition: int, offset: int, limits: ReadLimits
) -> DeadLetter:
    """The record at ``partition``/``offset`` of ``dlq_topic``, or :class:`NoSuchRecord`."""
    async with contextlib.aclosing(read_topics(broker, [dlq_topic], limits)) as read:
        async for record in read:
            if record.partition == partition and record.offset == offset:
                return DeadLetter(record)
    raise NoSuchRecord(f"no record at {address(dlq_topic, partition, offset)}")


def replay_message(letter: DeadLetter, *, keep_message_id: bool = True) -> OutgoingMessage:
    """The message that replays ``letter`` on its source topic (see the module on ids).

    A dead letter without a ``message-id`` (it was dead-lettered for lacking one) gets an
    id derived from its address when ids are kept, so replaying it twice still applies
    it once.
    """
    source = letter.source_topic
    if source is None:
        raise NotADeadLetter(f"{letter.address} has no {h.DLQ_SOURCE_TOPIC} header")
    headers = {
        name: value
        for name, value in letter.record.headers.items()
        if not name.startswith(DLQ_HEADER_PREFIX)
    }
    if not keep_message_id:
        headers[h.MESSAGE_ID] = str(uuid4())
    elif not headers.get(h.MESSAGE_ID):
        headers[h.MESSAGE_ID] = str(uuid5(NAMESPACE_URL, f"ordersaga:{letter.address}"))
    headers[h.DLQ_REPLAYED_FROM] = letter.address
    return OutgoingMessage(source, letter.record.key, letter.record.value, headers)


async def replay(
    broker: Broker, letters: Iterable[DeadLetter], *, keep_message_id: bool = True
) -> list[OutgoingMessage]:
    """Publish the replay of each of ``letters``, in their order; return what was sent.

    Every letter is checked before anything is sent: a record that is not a dead letter
    stops the batch before it starts.
    """
    messages = [replay_message(letter, keep_message_id=keep_message_id) for letter in letters]
    producer = broker.producer()
    try:
        await producer.send_batch(messages)
    finally:
        await producer.close()
    return messages
