"""Seeded faults for the in-process system: one ``random.Random`` decides every fault.

:class:`FaultyBroker` is the in-process broker with faults on its data path:

- its producers (every service's outbox relay publishes through one) duplicate some
  messages, hold some back for a few milliseconds (reordering them against other topics
  and other orders, never against earlier messages of the same topic and key, which
  Kafka keeps in order), hold some replies back past the step's timeout, fail some
  batches before publishing anything (the relay died after the outbox write) and fail
  others halfway (some rows sent but not deleted, so sent again);
- its consumers get some records twice in a batch and are sometimes rewound a few
  records (a redelivery of what was already handled).

:class:`CrashAfterCommit` kills consumers after their database commit, before their
offset commit; :func:`inject_poison` puts garbage on the topics the services consume.
Everything injected is counted in a :class:`FaultLog`, for the failure message.
"""

import asyncio
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.topics import DLQ_SUFFIX
from ordersaga.messaging.memory import InProcessBroker, InProcessConsumer, InProcessProducer
from ordersaga.messaging.port import OutgoingMessage, Record

REPLY_TOPICS = (topics.PRODUCT_RESERVED, topics.PAYMENT_PROCESSED)


class RelayCrash(ConnectionError):
    """A publish that died: the relay keeps its rows and publishes them again."""


@dataclass(frozen=True)
class FaultPlan:
    """How often each fault strikes: drawn from the seed, so seeds differ in their mix."""

    duplicate: float
    delay: float
    late_reply: float
    late_by: float
    relay_crash: float
    relay_half_batch: float
    consumer_duplicate: float
    rewind: float
    crash_after_commit: float
    poison: int

    @classmethod
    def draw(cls, rng: random.Random, step_timeout: float) -> "FaultPlan":
        """A mix of faults; each kind is switched off in about a quarter of the seeds."""

        def rate(high: float) -> float:
            return 0.0 if rng.random() < 0.25 else rng.uniform(0.0, high)

        return cls(
            duplicate=rate(0.3),
            delay=rate(0.3),
            late_reply=rate(0.15),
            late_by=step_timeout + rng.uniform(0.05, 0.3),
            relay_crash=rate(0.1),
            relay_half_batch=rate(0.1),
            consumer_duplicate=rate(0.2),
            rewind=rate(0.1),
            crash_after_commit=rate(0.1),
            poison=rng.choice((0, 0, 1, 3)),
        )


@dataclass
class FaultLog:
    """What was injected: counts per kind, and the first few occurrences in detail;
    ``places`` counts where database faults struck (``"<service> <part>"``), and
    ``on_driver_route`` those of them that struck a statement of the driver route."""

    counts: Counter[str] = field(default_factory=Counter)
    places: Counter[str] = field(default_factory=Counter)
    on_driver_route: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)
    keep: int = 40

    def add(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.details) < self.keep:
            self.details.append(f"{kind}: {detail}")

    def summary(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items())) or "none"
        return f"faults injected: {counts}\n  " + "\n  ".join(self.details)


def _where(message: OutgoingMessage) -> str:
    return f"{message.topic} key={message.key[:8]}"


@dataclass
class _Held:
    release_at: float
    message: OutgoingMessage


class FaultyBroker(InProcessBroker):
    """An in-memory :class:`InProcessBroker` whose producers and consumers misbehave."""

    def __init__(self, rng: random.Random, plan: FaultPlan, log: FaultLog, partitions: int) -> None:
        super().__init__(None, partitions)
        self.rng = rng
        self.plan = plan
        self.log = log
        self.subscriptions: dict[str, tuple[str, ...]] = {}
        self._held: dict[tuple[str, str], deque[_Held]] = {}

    # -- what the system sees ---------------------------------------------------------------
    def producer(self) -> InProcessProducer:
        return FaultyProducer(self)

    def consumer(self, group: str, topics: Sequence[str], client_id: str) -> InProcessConsumer:
        joined = super().consumer(group, topics, client_id)
        faulty = FaultyConsumer(self, group, tuple(topics), client_id)
        members = self._groups[group].members
        members[members.index(joined)] = faulty
        self.subscriptions[group] = tuple(topics)
        return faulty

    # -- for the test -----------------------------------------------------------------------
    def held(self) -> int:
        """Messages acknowledged to a producer but not appended yet."""
        return sum(len(queue) for queue in self._held.values())

    def caught_up(self) -> bool:
        """Every group has committed everything on the topics it consumes."""
        for group, subscribed in self.subscriptions.items():
            committed = self.committed(group)
            for topic in subscribed:
                for tp, end in self.end_offsets(topic).items():
                    if committed.get(tp, 0) < end:
                        return False
        return True

    # -- holding messages back --------------------------------------------------------------
    def hold(self, message: OutgoingMessage, seconds: float) -> None:
        """Append ``message`` after ``seconds``, but never before what its key sent earlier
        on its topic (Kafka keeps a partition in order)."""
        loop = asyncio.get_running_loop()
        where = (message.topic, message.key)
        queue = self._held.setdefault(where, deque())
        release_at = loop.time() + seconds
        if queue:
            release_at = max(release_at, queue[-1].release_at)
        queue.append(_Held(release_at, message))
        loop.call_at(release_at, self._release, where)

    def is_held(self, message: OutgoingMessage) -> bool:
        return bool(self._held.get((message.topic, message.key)))

    def _release(self, where: tuple[str, str]) -> None:
        # One callback per held message, run in the order of their release times (equal
        # times in the order held), so each releases the oldest of its queue; asyncio may
        # run a callback a clock tick early, so the time is not compared again here.
        queue = self._held[where]
        self._append([queue.popleft().message])
        if not queue:
            del self._held[where]


class FaultyProducer(InProcessProducer):
    """Publishes through a :class:`FaultyBroker`, which decides what goes wrong."""

    def __init__(self, broker: FaultyBroker) -> None:
        super().__init__(broker)
        self._faulty = broker

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        plan, rng, log = self._faulty.plan, self._faulty.rng, self._faulty.log
        if not messages or messages[0].topic.endswith(DLQ_SUFFIX):
            await super().send_batch(messages)
            return
        if rng.random() < plan.relay_crash:
            log.add("relay-crash", f"before publishing {len(messages)} messages")
            raise RelayCrash("crashed before publishing")
        crash_after = len(messages)
        if rng.random() < plan.relay_half_batch:
            crash_after = rng.randrange(len(messages))
        for index, message in enumerate(messages):
            if index == crash_after:
                log.add("relay-half-batch", f"{index} of {len(messages)} sent, then crashed")
                raise RelayCrash("crashed in the middle of a batch")
            self._publish(message)

    def _publish(self, message: OutgoingMessage) -> None:
        broker, plan, rng, log = self._faulty, self._faulty.plan, self._faulty.rng, self._faulty.log
        copies = 2 if rng.random() < plan.duplicate else 1
        if copies == 2:
            log.add("duplicate", _where(message))
        for _ in range(copies):
            if message.topic in REPLY_TOPICS and rng.random() < plan.late_reply:
                log.add("late-reply", f"{_where(message)} held {plan.late_by:.2f}s")
                broker.hold(message, plan.late_by)
            elif rng.random() < plan.delay:
                delay = rng.uniform(0.001, 0.03)
                log.add("delay", f"{_where(message)} held {delay * 1000:.0f}ms")
                broker.hold(message, delay)
            elif broker.is_held(message):
                broker.hold(message, 0.0)  # behind the earlier one of its topic and key
            else:
                broker._append([message])


class FaultyConsumer(InProcessConsumer):
    """Gets some records twice in a batch, and is sometimes rewound a few records."""

    def __init__(
        self, broker: FaultyBroker, group: str, topics: tuple[str, ...], client_id: str
    ) -> None:
        super().__init__(broker, group, topics, client_id)
        self._faulty = broker

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        plan, rng, log = self._faulty.plan, self._faulty.rng, self._faulty.log
        self._rebalance_if_needed()
        if self.assigned and rng.random() < plan.rewind:
            tp = rng.choice(sorted(self.assigned))
            back = min(self._positions[tp], rng.randint(1, 5))
            if back:
                self._positions[tp] -= back
                log.add("redelivery", f"{self.group} rewound {tp.topic}[{tp.partition}] by {back}")
        batch = await super().poll(max_records, timeout)
        out: list[Record] = []
        for record in batch:
            out.append(record)
            if rng.random() < plan.consumer_duplicate:
                log.add("delivered-twice", f"{self.group} {record.topic}@{record.offset}")
                out.append(record)
        return out


class CrashAfterCommit:
    """Kills a consumer after its database commit, before its offset commit: at a share
    of the records, once per record (one that died at every record would never commit)."""

    def __init__(self, rng: random.Random, probability: float, log: FaultLog) -> None:
        self._rng = rng
        self._probability = probability
        self._log = log
        self._decided: set[tuple[str, int, int]] = set()

    def after_db_commit(self, record: Record) -> bool:
        where = (record.topic, record.partition, record.offset)
        if where in self._decided:
            return False
        self._decided.add(where)
        crash = self._rng.random() < self._probability
        if crash:
            self._log.add(
                "crash-after-commit", f"{record.topic}[{record.partition}]@{record.offset}"
            )
        return crash


POISON_VALUES: tuple[bytes, ...] = (
    b"\xff\xfe not utf-8",
    b"not json",
    b"[1, 2, 3]",
    b'{"orderID": "nope"}',
    b'{"orderID": 1, "userID": 1, "productID": 1, "quantity": -5, "amount": "x"}',
)


def inject_poison(broker: FaultyBroker, count: int) -> None:
    """Append ``count`` garbage records to topics the services consume, some with a
    ``message-id`` header and some without."""
    for _ in range(count):
        topic = broker.rng.choice(topics.ALL)
        value = broker.rng.choice(POISON_VALUES)
        headers = {h.MESSAGE_ID: f"poison-{broker.rng.randrange(10**9)}"}
        if broker.rng.random() < 0.3:
            headers = {}
        key = f"poison-{broker.rng.randrange(100)}"
        broker._append([OutgoingMessage(topic, key, value, headers)])
        broker.log.add("poison", f"{topic}: {value[:24]!r}")
