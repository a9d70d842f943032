"""The broker port: what the services need of Kafka, and nothing more.

Adapters: :mod:`ordersaga.messaging.memory` (in-process, optionally SQLite-backed).
Semantics every adapter keeps, as Kafka does: a topic has partitions, a record's
partition is chosen by its key, a consumer group shares a topic's partitions among
its members, and a member that (re)joins reads from the group's committed offsets,
so everything not committed is delivered again.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: Mapping[str, str]

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class UndeliverableMessages(Exception):
    """Some messages of a batch can never be published; the broker acknowledged the rest.

    Raised by :meth:`Producer.send_batch` only when every message of the batch that
    failed did so for a reason of its own that no retry can cure (the topic refuses this
    service, the message is too large...): ``failures`` maps their positions in the batch
    to what went wrong. A batch with any other failure raises that error instead, and is
    sent again whole.
    """

    def __init__(self, failures: Mapping[int, str]) -> None:
        super().__init__(f"{len(failures)} message(s) cannot be published")
        self.failures = dict(failures)


class Producer(Protocol):
    replaced: int
    """How often this producer was left unusable and replaced by a new one (0 for one
    that never is)."""

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish ``messages`` in order; return only once the broker has acknowledged all.

        Raises :class:`UndeliverableMessages` when the only failures are permanent ones.
        A caller that stops waiting (cancels) abandons the batch: some of it may still be
        published later, which consumers' inboxes make harmless.
        """

    async def close(self) -> None: ...


class Consumer(Protocol):
    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""

    def lag(self) -> dict[TopicPartition, int]:
        """Per partition this member holds whose position it knows, the records after
        that position (the partition's end as last fetched, minus the offset of the next
        record to read); a partition it has not read from since joining may be missing."""

    async def close(self) -> None:
        """Leave the group without committing anything more."""


class Broker(Protocol):
    async def create_topics(self, topics: Sequence[str], partitions: int) -> None:
        """Create the topics that do not exist yet."""

    def producer(self) -> Producer: ...

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> Consumer: ...

    async def offset_ranges(self, topics: Sequence[str]) -> dict[TopicPartition, range]:
        """Per partition of ``topics``, the offsets it holds now: ``range(beginning, end)``.

        Topics that do not exist are left out. An empty range means an empty partition,
        which lets a reader stop at once instead of waiting for records that never come.
        """

    async def close(self) -> None: ...
