"""The broker contract: what every adapter of the broker port must do, as Kafka does.

Written once and run against every adapter (in-process, SQLite-backed, Kafka); the
embedded mode is only trustworthy because its broker passes the same tests as the real
one. Group changes take Kafka a moment, so the tests wait for a group to settle, up to
the adapter's patience, before they check what it delivered.
"""

import asyncio
import time
from collections.abc import Sequence

import pytest

from ordersaga.config import Settings
from ordersaga.messaging.kafka import KafkaBroker
from ordersaga.messaging.kafka_config import CONSUMER_OPTIONS
from ordersaga.messaging.port import Consumer, OutgoingMessage, Record, TopicPartition
from tests.contract.conftest import PARTITIONS, BrokerUnderTest, KafkaTopics, unique


def message(topic: str, key: str, n: int) -> OutgoingMessage:
    return OutgoingMessage(topic, key, f"{key}:{n}".encode(), {"n": str(n)})


async def drain(consumer: Consumer, want: int, timeout: float) -> list[Record]:
    """Poll until ``want`` records arrived or ``timeout`` passed."""
    records: list[Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(records) < want and loop.time() < deadline:
        records += await consumer.poll(100, 0.2)
    return records


async def settle(
    broker: BrokerUnderTest, members: Sequence[Consumer], want: int = 0
) -> list[list[Record]]:
    """Poll every member until each holds partitions, together they hold all of them, no
    two hold the same, and ``want`` records arrived; return what each received."""
    received: list[list[Record]] = [[] for _ in members]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + broker.patience
    while True:
        for member, records in zip(members, received, strict=True):
            records += await member.poll(100, 0.1)
        held = [broker.assigned(member) for member in members]
        shared = all(held) and sum(len(h) for h in held) == len(set().union(*held))
        if shared and len(set().union(*held)) == PARTITIONS and sum(map(len, received)) >= want:
            return received
        assert loop.time() < deadline, f"the group did not settle: {held}"


async def test_records_of_one_key_share_a_partition_and_keep_their_order(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    await broker.producer().send_batch(
        [message(topic, key, n) for n in range(10) for key in ("a", "b", "c")]
    )
    consumer = broker.consumer(broker_under_test.group("g"), [topic], "c1")
    records = await drain(consumer, 30, broker_under_test.patience)
    for key in ("a", "b", "c"):
        mine = [r for r in records if r.key == key]
        assert [r.value for r in mine] == [f"{key}:{n}".encode() for n in range(10)]
        assert len({r.partition for r in mine}) == 1
    assert records[0].headers["n"] == "0"


async def test_a_group_shares_partitions_between_its_members(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic, group = broker_under_test.topic, broker_under_test.group("g")
    broker = await broker_under_test.open()
    first = broker.consumer(group, [topic], "c1")
    second = broker.consumer(group, [topic], "c2")
    await settle(broker_under_test, [first, second])
    await broker.producer().send_batch([message(topic, f"k{i}", i) for i in range(40)])
    got_first, got_second = await settle(broker_under_test, [first, second], want=40)
    assert {r.partition for r in got_first}.isdisjoint({r.partition for r in got_second})
    assert sorted(r.value for r in got_first + got_second) == sorted(
        f"k{i}:{i}".encode() for i in range(40)
    )


async def test_every_group_reads_everything(broker_under_test: BrokerUnderTest) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    await broker.producer().send_batch([message(topic, "k", i) for i in range(5)])
    for name in ("one", "two"):
        consumer = broker.consumer(broker_under_test.group(name), [topic], name)
        assert len(await drain(consumer, 5, broker_under_test.patience)) == 5


async def test_what_was_not_committed_is_delivered_again(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic, group = broker_under_test.topic, broker_under_test.group("g")
    broker = await broker_under_test.open()
    await broker.producer().send_batch([message(topic, "k", i) for i in range(6)])
    consumer = broker.consumer(group, [topic], "c1")
    records = await drain(consumer, 6, broker_under_test.patience)
    partition = records[0].topic_partition
    await consumer.commit({partition: records[3].offset + 1})  # handled 0..3, not 4 and 5
    await consumer.close()

    again = broker.consumer(group, [topic], "c2")
    redelivered = await drain(again, 2, broker_under_test.patience)
    assert [r.value for r in redelivered] == [b"k:4", b"k:5"]


async def test_a_consumer_knows_how_far_behind_the_end_it_is(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    await broker.producer().send_batch([message(topic, "k", i) for i in range(10)])
    consumer = broker.consumer(broker_under_test.group("g"), [topic], "c1")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + broker_under_test.patience
    first: list[Record] = []
    while not first:
        assert loop.time() < deadline, "nothing was delivered"
        first = await consumer.poll(3, 0.2)
    partition = first[0].topic_partition
    assert consumer.lag()[partition] == 10 - (first[-1].offset + 1)
    rest = await drain(consumer, 10 - len(first), broker_under_test.patience)
    assert len(first) + len(rest) == 10
    assert consumer.lag()[partition] == 0


async def test_the_log_and_the_offsets_outlive_the_broker(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic, group = broker_under_test.topic, broker_under_test.group("g")
    broker = await broker_under_test.open()
    await broker.producer().send_batch([message(topic, "k", i) for i in range(3)])
    consumer = broker.consumer(group, [topic], "c1")
    records = await drain(consumer, 3, broker_under_test.patience)
    await consumer.commit({TopicPartition(topic, records[0].partition): records[0].offset + 1})
    await consumer.close()

    reopened = await broker_under_test.open()
    rest = await drain(reopened.consumer(group, [topic], "c2"), 2, broker_under_test.patience)
    assert [r.value for r in rest] == [b"k:1", b"k:2"]


async def test_every_send_acknowledged_while_others_were_in_flight_outlives_the_broker(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()

    async def send(key: str) -> None:  # a producer per key, a record per request
        producer = broker.producer()
        for n in range(5):
            await producer.send_batch([message(topic, key, n)])
        await producer.close()

    keys = [f"k{i}" for i in range(4)]
    await asyncio.gather(*(send(key) for key in keys))

    reopened = await broker_under_test.open()
    consumer = reopened.consumer(broker_under_test.group("g"), [topic], "c1")
    records = await drain(consumer, 20, broker_under_test.patience)
    await consumer.close()
    for key in keys:
        assert [r.value for r in records if r.key == key] == [
            f"{key}:{n}".encode() for n in range(5)
        ]


async def test_a_waiting_poll_wakes_when_a_record_arrives(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    consumer = broker.consumer(broker_under_test.group("g"), [topic], "c1")
    await settle(broker_under_test, [consumer])
    polling = asyncio.create_task(consumer.poll(10, timeout=5.0))
    await asyncio.sleep(0.05)
    await broker.producer().send_batch([message(topic, "k", 1)])
    records = await asyncio.wait_for(polling, 1.0)
    assert [r.value for r in records] == [b"k:1"]


async def test_a_member_that_lost_a_partition_cannot_commit_for_it(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic, group = broker_under_test.topic, broker_under_test.group("g")
    broker = await broker_under_test.open()
    await broker.producer().send_batch([message(topic, f"k{i}", i) for i in range(20)])
    first = broker.consumer(group, [topic], "c1")
    records = await drain(first, 20, broker_under_test.patience)
    assert len({r.partition for r in records}) == PARTITIONS
    second = broker.consumer(group, [topic], "c2")  # takes half of first's partitions
    _, moved = await settle(broker_under_test, [first, second])
    await first.commit({r.topic_partition: r.offset + 1 for r in records})
    moved += await drain(second, 1, timeout=0.5)
    assert moved, "the partitions that moved are delivered again to their new owner"

    # Only first's commits for the partitions it kept count: a member reading after both
    # left gets exactly what is in the partitions that moved.
    lost = broker_under_test.assigned(second)
    expected = sorted(r.value for r in records if r.topic_partition in lost)
    await first.close()
    await second.close()
    third = broker.consumer(group, [topic], "c3")
    after = await drain(third, len(expected), broker_under_test.patience)
    after += await third.poll(100, 0.5)
    assert sorted(r.value for r in after) == expected


ODD_HEADERS = {
    "message-id": "0b6f1c8e-0000-4000-8000-000000000001",
    "ünïcødé": "日本語 ✓ 🚀",
    "empty": "",
    "spaces": "  leading and trailing  ",
    "json": '{"a": [1, 2.50, null]}',
    "escapes": 'quote " backslash \\ tab \t newline \n nul \x00 \u2028',
}


async def test_keys_values_and_headers_survive_the_round_trip_byte_exactly(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    value = bytes(range(256)) + "ende ✓".encode()
    key = "clé-🔑-" + "x" * 200
    await broker.producer().send_batch([OutgoingMessage(topic, key, value, ODD_HEADERS)])
    consumer = broker.consumer(broker_under_test.group("g"), [topic], "c1")
    (record,) = await drain(consumer, 1, broker_under_test.patience)
    assert record.key == key
    assert record.key.encode() == key.encode()
    assert record.value == value
    assert dict(record.headers) == ODD_HEADERS
    assert {k: v.encode() for k, v in record.headers.items()} == {
        k: v.encode() for k, v in ODD_HEADERS.items()
    }


async def test_headers_read_back_from_the_log_after_a_restart_are_those_sent(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    await broker.producer().send_batch([OutgoingMessage(topic, "k", b"v", ODD_HEADERS)])

    reopened = await broker_under_test.open()
    consumer = reopened.consumer(broker_under_test.group("g"), [topic], "c1")
    (record,) = await drain(consumer, 1, broker_under_test.patience)
    assert dict(record.headers) == ODD_HEADERS


async def test_a_batch_of_a_thousand_keeps_the_order_of_each_key(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    keys = [f"order-{i}" for i in range(25)]
    await broker.producer().send_batch([message(topic, key, n) for n in range(40) for key in keys])
    consumer = broker.consumer(broker_under_test.group("g"), [topic], "c1")
    records = await drain(consumer, 1000, broker_under_test.patience)
    assert len(records) == 1000
    for key in keys:
        mine = [r for r in records if r.key == key]
        assert [r.value for r in mine] == [f"{key}:{n}".encode() for n in range(40)]
        assert len({r.partition for r in mine}) == 1
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)


async def test_creating_topics_that_exist_changes_nothing(
    broker_under_test: BrokerUnderTest,
) -> None:
    topic = broker_under_test.topic
    broker = await broker_under_test.open()
    await broker.producer().send_batch([message(topic, "k", 1)])
    await broker.create_topics([topic, topic], PARTITIONS)
    await broker.create_topics([topic], PARTITIONS * 2)
    consumer = broker.consumer(broker_under_test.group("g"), [topic], "c1")
    assert [r.value for r in await drain(consumer, 1, broker_under_test.patience)] == [b"k:1"]
    other = broker.consumer(broker_under_test.group("h"), [topic], "c2")
    await settle(broker_under_test, [other])
    assert len(broker_under_test.assigned(other)) == PARTITIONS


@pytest.mark.slow
async def test_kafka_a_member_the_group_dropped_commits_nothing_and_reads_again(
    kafka_settings: Settings, kafka_topics: KafkaTopics
) -> None:
    """A process that stalls past the session timeout is dropped from its group; its late
    commit is refused without failing, and everything it read is delivered again."""
    topic, group = unique("dropped"), unique("g")
    await kafka_topics.create(topic)
    broker = KafkaBroker(kafka_settings)
    try:
        await broker.producer().send_batch([message(topic, f"k{i}", i) for i in range(20)])
        member = broker.consumer(group, [topic], "c1")
        records = await drain(member, 20, 30.0)
        # Blocking the event loop stops the heartbeats, as a stalled process would.
        time.sleep(CONSUMER_OPTIONS["session_timeout_ms"] / 1000 + 1)
        await member.commit({r.topic_partition: r.offset + 1 for r in records})
        again = await drain(member, 20, 30.0)
        assert sorted(r.value for r in again) == sorted(r.value for r in records)
    finally:
        await broker.close()
