"""An in-process broker that behaves like Kafka where the saga depends on it.

Topics with partitions chosen by key, consumer groups that share partitions and keep
committed offsets, and redelivery of everything not committed once a member leaves or
a new member joins. Given a file, the log and the committed offsets are kept in SQLite,
so an embedded system that is killed and started again loses nothing.

**Group commit.** With a file, a producer's send returns, and a consumer's commit
returns, only once what it wrote is on disk (``synchronous=FULL``), as Kafka's
``acks=all`` does. The writes of every producer and consumer of the process that come
while one is being written go together in the next transaction, on a thread: one fsync
for all of them, and the event loop never waits for the disk. A record is readable as
soon as it is appended; a consumer's offset commit is written after it (or with it), so
a committed offset never points past what is on disk, and a record lost in a crash
before it was written was never acknowledged to its producer, whose outbox sends it
again (the consumers' inboxes skip what they had handled of it).
"""

import asyncio
import contextlib
import logging
import sqlite3
import threading
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ordersaga.messaging.header_text import headers_of, headers_text
from ordersaga.messaging.port import OutgoingMessage, Record, TopicPartition

DEFAULT_PARTITIONS = 6
BROKER_FILE = "broker.sqlite3"
"""The file name of the embedded system's broker log, under its data directory."""


log = logging.getLogger(__name__)


def partition_for(key: str, partitions: int) -> int:
    """A stable partition for ``key``: the same key always lands on the same partition."""
    return zlib.crc32(key.encode()) % partitions


@dataclass
class _Group:
    members: list["InProcessConsumer"] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    generation: int = 0


class _Store:
    """The SQLite file behind a persistent broker (synchronous: it is local and fast)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written on a thread (:class:`_GroupCommit`), one write at a time.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL, as the services' databases: a record the relay saw acknowledged (and so
        # deleted from its outbox) and an offset committed must survive a power loss.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER);
            CREATE TABLE IF NOT EXISTS records (
                topic TEXT, partition INTEGER, "offset" INTEGER, key TEXT, value BLOB,
                headers TEXT, PRIMARY KEY (topic, partition, "offset"));
            CREATE TABLE IF NOT EXISTS offsets (
                group_id TEXT, topic TEXT, partition INTEGER, "offset" INTEGER,
                PRIMARY KEY (group_id, topic, partition));
            """
        )

    def load_topics(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, partitions FROM topics").fetchall())

    def load_records(self) -> list[Record]:
        rows = self._db.execute(
            'SELECT topic, partition, "offset", key, value, headers FROM records '
            'ORDER BY topic, partition, "offset"'
        )
        return [Record(t, p, o, k, bytes(v), headers_of(h)) for t, p, o, k, v, h in rows]

    def load_offsets(self) -> dict[str, dict[TopicPartition, int]]:
        groups: dict[str, dict[TopicPartition, int]] = {}
        for group, topic, partition, offset in self._db.execute(
            'SELECT group_id, topic, partition, "offset" FROM offsets'
        ):
            groups.setdefault(group, {})[TopicPartition(topic, partition)] = offset
        return groups

    def add_topic(self, name: str, partitions: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (name, partitions))

    def write(
        self, records: Sequence[Record], offsets: Mapping[tuple[str, TopicPartition], int]
    ) -> None:
        """Append ``records`` and commit ``offsets`` (by group and partition), in one
        transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (r.topic, r.partition, r.offset, r.key, r.value, headers_text(r.headers))
                    for r in records
                ],
            )
            self._db.executemany(
                "INSERT INTO offsets VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE "
                'SET "offset" = excluded."offset"',
                [
                    (group, tp.topic, tp.partition, offset)
                    for (group, tp), offset in offsets.items()
                ],
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _GroupCommit:
    """What the broker's producers and consumers wrote, put on disk together.

    Appends and offset commits are added as they happen; :meth:`written` is done once
    everything added before it is on disk. One transaction at a time is written, on a
    thread; what is added meanwhile waits for the next one, which takes all of it.
    """

    def __init__(self, store: _Store) -> None:
        self._store = store
        self._records: list[Record] = []
        self._offsets: dict[tuple[str, TopicPartition], int] = {}
        self._waiting: list[asyncio.Future[None]] = []
        self._writing: asyncio.Task[None] | None = None

    def add(
        self,
        records: Sequence[Record] = (),
        group: str = "",
        offsets: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        self._records += records
        for tp, offset in (offsets or {}).items():
            self._offsets[group, tp] = offset
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a tool outside any event loop: write at once
            self._take_and_write()
            return
        self._start()

    def written(self) -> "asyncio.Future[None]":
        """Done once everything added so far is on disk (failed if writing it failed)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._start()
        return future

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        writing = self._writing
        # A writer of an event loop that ended (a tool's earlier asyncio.run) is gone.
        if writing is None or writing.done() or writing.get_loop() is not loop:
            self._writing = loop.create_task(self._write())

    def _take_and_write(self) -> None:
        records, offsets = self._records, self._offsets
        self._records, self._offsets = [], {}
        self._store.write(records, offsets)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._records or self._offsets or self._waiting:
                records, offsets, waiting = self._records, self._offsets, self._waiting
                self._records, self._offsets, self._waiting = [], {}, []
                try:
                    await loop.run_in_executor(None, self._store.write, records, offsets)
                except Exception as error:
                    log.error("the broker's log could not be written: %r", error)
                    for future in waiting:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for future in waiting:
                    if not future.done():
                        future.set_result(None)
        finally:
            if self._writing is asyncio.current_task():
                self._writing = None

    async def flush(self) -> None:
        """Wait until everything added is on disk (or failed)."""
        if self._writing is not None or self._records or self._offsets:
            with contextlib.suppress(Exception):
                await self.written()


class InProcessBroker:
    """The broker port, in this process. ``path=None`` keeps everything in memory."""

    def __init__(self, path: Path | None = None, partitions: int = DEFAULT_PARTITIONS) -> None:
        self.default_partitions = partitions
        self._logs: dict[str, list[list[Record]]] = {}
        self._groups: dict[str, _Group] = {}
        self._store = _Store(path) if path is not None else None
        self._disk: _GroupCommit | None = None
        if self._store is not None:
            self._load(self._store)
            self._disk = _GroupCommit(self._store)

    def _load(self, store: _Store) -> None:
        for name, count in store.load_topics().items():
            self._logs[name] = [[] for _ in range(count)]
        for record in store.load_records():
            self._logs[record.topic][record.partition].append(record)
        for group, offsets in store.load_offsets().items():
            self._groups[group] = _Group(committed=offsets)

    # -- administration -------------------------------------------------------------------
    async def create_topics(self, topics: Sequence[str], partitions: int) -> None:
        for topic in topics:
            self._ensure_topic(topic, partitions)

    def _ensure_topic(self, topic: str, partitions: int | None = None) -> list[list[Record]]:
        log = self._logs.get(topic)
        if log is None:
            count = partitions or self.default_partitions
            log = self._logs[topic] = [[] for _ in range(count)]
            if self._store is not None:
                self._store.add_topic(topic, count)
        return log

    def partitions(self, topic: str) -> int:
        return len(self._ensure_topic(topic))

    def records(self, topic: str) -> list[Record]:
        """Every record on ``topic``, partition by partition: for tests and tools."""
        return [r for partition in self._logs.get(topic, []) for r in partition]

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        return {
            TopicPartition(topic, p): len(log) for p, log in enumerate(self._ensure_topic(topic))
        }

    async def offset_ranges(self, topics: Sequence[str]) -> dict[TopicPartition, range]:
        return {
            TopicPartition(topic, p): range(0, len(log))
            for topic in topics
            for p, log in enumerate(self._logs.get(topic, []))
        }

    def committed(self, group: str) -> dict[TopicPartition, int]:
        found = self._groups.get(group)
        return dict(found.committed) if found else {}

    # -- data path --------------------------------------------------------------------------
    def producer(self) -> "InProcessProducer":
        return InProcessProducer(self)

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> "InProcessConsumer":
        for topic in topics:
            self._ensure_topic(topic)
        consumer = InProcessConsumer(self, group, tuple(topics), client_id)
        state = self._groups.setdefault(group, _Group())
        state.members.append(consumer)
        state.generation += 1
        return consumer

    def _append(self, messages: Sequence[OutgoingMessage]) -> None:
        records = []
        topics = set()
        for message in messages:
            topics.add(message.topic)
            log = self._ensure_topic(message.topic)
            index = partition_for(message.key, len(log))
            partition = log[index]
            record = Record(
                message.topic,
                index,
                len(partition),
                message.key,
                message.value,
                dict(message.headers),
            )
            partition.append(record)
            records.append(record)
        if self._disk is not None:
            self._disk.add(records)
        self._wake(topics)

    def _wake(self, topics: set[str]) -> None:
        """Wake the members that subscribe to ``topics``: only they have new records
        (waking every member for every append cost each of the others a poll)."""
        for state in self._groups.values():
            for member in state.members:
                if not topics.isdisjoint(member.topics):
                    member._arrived.set()

    def _leave(self, consumer: "InProcessConsumer") -> None:
        state = self._groups[consumer.group]
        if consumer in state.members:
            state.members.remove(consumer)
            state.generation += 1

    def _assignment(self, consumer: "InProcessConsumer") -> set[TopicPartition]:
        """Round-robin of each topic's partitions over the members that subscribe to it."""
        state = self._groups[consumer.group]
        assigned: set[TopicPartition] = set()
        for topic in consumer.topics:
            members = [m for m in state.members if topic in m.topics]
            index = members.index(consumer)
            for partition in range(index, self.partitions(topic), len(members)):
                assigned.add(TopicPartition(topic, partition))
        return assigned

    def _commit(self, consumer: "InProcessConsumer", offsets: Mapping[TopicPartition, int]) -> None:
        state = self._groups[consumer.group]
        # As in Kafka, a member whose partitions moved may not commit for them any more.
        owned = {tp: o for tp, o in offsets.items() if tp in consumer.assigned}
        state.committed.update(owned)
        if self._disk is not None and owned:
            self._disk.add(group=consumer.group, offsets=owned)

    async def _on_disk(self) -> None:
        """Return once what was appended and committed so far is on disk."""
        if self._disk is not None:
            await self._disk.written()

    async def close(self) -> None:
        for state in self._groups.values():
            for member in list(state.members):
                await member.close()
        if self._disk is not None:
            await self._disk.flush()
            self._disk = None
        if self._store is not None:
            self._store.close()
            self._store = None


class InProcessProducer:
    replaced = 0

    def __init__(self, broker: InProcessBroker) -> None:
        self._broker = broker

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            self._broker._append(messages)
            await self._broker._on_disk()

    async def close(self) -> None:
        return None


class InProcessConsumer:
    def __init__(
        self, broker: InProcessBroker, group: str, topics: tuple[str, ...], client_id: str
    ) -> None:
        self._broker = broker
        self.group = group
        self.topics = topics
        self.client_id = client_id
        self.assigned: set[TopicPartition] = set()
        self._in_order: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._generation = -1
        self._closed = False
        self._arrived = asyncio.Event()
        """Set by the broker when a record is appended to a topic of this consumer."""

    def _rebalance_if_needed(self) -> None:
        state = self._broker._groups[self.group]
        if state.generation == self._generation:
            return
        self._generation = state.generation
        self.assigned = self._broker._assignment(self)
        self._in_order = sorted(self.assigned)
        # A partition kept keeps its position; one newly assigned starts at the committed
        # offset, so whatever its previous owner did not commit is delivered again.
        self._positions = {
            tp: self._positions.get(tp, state.committed.get(tp, 0)) for tp in self.assigned
        }

    def _take(self, max_records: int) -> list[Record]:
        self._rebalance_if_needed()
        batch: list[Record] = []
        for tp in self._in_order:
            log = self._broker._logs[tp.topic][tp.partition]
            position = self._positions[tp]
            taken = log[position : position + max_records - len(batch)]
            batch.extend(taken)
            self._positions[tp] = position + len(taken)
            if len(batch) >= max_records:
                break
        return batch

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        if self._closed:
            raise RuntimeError(f"consumer {self.client_id} is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            arrived = self._arrived = asyncio.Event()  # of this loop, set by what comes next
            batch = self._take(max_records)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                return batch
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await arrived.wait()

    def lag(self) -> dict[TopicPartition, int]:
        logs = self._broker._logs
        return {
            tp: len(logs[tp.topic][tp.partition]) - position
            for tp, position in self._positions.items()
        }

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not self._closed:
            self._rebalance_if_needed()
            self._broker._commit(self, offsets)
            await self._broker._on_disk()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._broker._leave(self)
