"""The broker's own view of a run: every saga topic read back with a plain client, and
what it must show — each saga's messages in order, and each message once unless a
producer sent it again (a retry, or an abandoned send published late), which the
consumers' inboxes then absorbed."""

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.db.engine import make_engine
from ordersaga.messaging.kafka_config import client_options

# The orchestrator's commands, in the order a saga may send them for the first time; the
# outcome (order-updated) comes only after every one it sent.
COMMANDS = (
    "reserve-product",
    "process-payment",
    "cancel-payment",
    "cancel-product-reservation",
)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: str
    message_id: str
    sent_at: datetime


@dataclass
class BrokerView:
    messages: list[Message] = field(default_factory=list)

    def by_topic(self) -> dict[str, list[Message]]:
        grouped: dict[str, list[Message]] = defaultdict(list)
        for m in self.messages:
            grouped[m.topic].append(m)
        return grouped

    def ids(self) -> dict[str, set[str]]:
        """The distinct message ids on each topic."""
        return {t: {m.message_id for m in ms} for t, ms in self.by_topic().items()}

    def copies(self) -> int:
        """Records beyond the first of their message id: sent again by a producer."""
        return len(self.messages) - sum(len(ids) for ids in self.ids().values())

    def first(self) -> list[Message]:
        """The first copy of each message, in offset order within a partition."""
        seen: set[tuple[str, str]] = set()
        firsts = []
        for m in sorted(self.messages, key=lambda m: (m.topic, m.partition, m.offset)):
            if (m.topic, m.message_id) not in seen:
                seen.add((m.topic, m.message_id))
                firsts.append(m)
        return firsts

    def order_problems(self) -> list[str]:
        """What is out of order: a saga's records split over partitions of a topic, later
        sent before earlier within a topic, a payment before its reservation, or the
        outcome before a command of its saga."""
        problems = []
        per_key: dict[tuple[str, str], list[Message]] = defaultdict(list)
        sagas: dict[str, dict[str, datetime]] = defaultdict(dict)
        for m in self.first():
            per_key[(m.topic, m.key)].append(m)
            sagas[m.key].setdefault(m.topic, m.sent_at)
        for (topic, key), ms in per_key.items():
            if len({m.partition for m in ms}) > 1:
                problems.append(f"{topic} {key}: on partitions {sorted({m.partition for m in ms})}")
            sent = [m.sent_at for m in ms]
            if sent != sorted(sent):
                problems.append(f"{topic} {key}: offsets not in the order the saga sent them")
        for key, first_sent in sagas.items():
            reserve, payment = first_sent.get("reserve-product"), first_sent.get("process-payment")
            if payment and (reserve is None or payment < reserve):
                problems.append(f"{key}: process-payment before reserve-product")
            outcome = first_sent.get("order-updated")
            commands = [first_sent[c] for c in COMMANDS if c in first_sent]
            if outcome and commands and outcome < max(commands):
                problems.append(f"{key}: order-updated before a command of its saga")
        return problems


async def _read(bootstrap: str) -> BrokerView:
    names = list(topics.with_dead_letters())
    options = client_options(Settings(kafka_bootstrap_servers=bootstrap))
    consumer = AIOKafkaConsumer(
        **options,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"broker-view-{uuid.uuid4().hex[:6]}",
    )
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
    ]
    await consumer.start()
    view = BrokerView()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while remaining:
            assert loop.time() < deadline, f"could not read {sorted(remaining)} to the end"
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                view.messages.extend(_message(r) for r in batch)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return view


def _message(record: Any) -> Message:
    headers = {k: v.decode() for k, v in record.headers}
    return Message(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(),
        message_id=headers["message-id"],
        sent_at=datetime.fromisoformat(headers["sent-at"]),
    )


def read_back(bootstrap: str) -> BrokerView:
    """Every record of the saga topics (and their dead-letter topics) on the cluster."""
    return asyncio.run(_read(bootstrap))


async def _inboxes(urls: dict[str, str]) -> dict[str, set[str]]:
    handled: dict[str, set[str]] = defaultdict(set)
    for url in urls.values():
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(text("SELECT topic, message_id FROM processed_messages"))
                for topic, message_id in rows:
                    handled[topic].add(message_id)
        finally:
            await engine.dispose()
    return dict(handled)


def inboxes(urls: dict[str, str]) -> dict[str, set[str]]:
    """Every service's handled message ids, by topic."""
    return asyncio.run(_inboxes(urls))


async def _count(urls: dict[str, str], table: str) -> int:
    total = 0
    for url in urls.values():
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                total += int(
                    (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
                )
        finally:
            await engine.dispose()
    return total


def count_rows(urls: dict[str, str], table: str) -> int:
    """Rows of ``table`` (outbox, outbox_failed...) over every service's database."""
    return asyncio.run(_count(urls, table))
