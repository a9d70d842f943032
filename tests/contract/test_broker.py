"""The broker contract: what every adapter of the broker port must do, as Kafka does.

Written once and run against every adapter; the embedded mode is only trustworthy
because its broker passes the same tests as the real one.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.port import Broker, OutgoingMessage, Record, TopicPartition

TOPIC = "contract-topic"
BrokerFactory = Callable[[], Awaitable[Broker]]


@pytest.fixture(params=["in-process", "in-process-sqlite"])
async def open_broker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BrokerFactory]:
    """Opens the broker under test; opening it again reaches the same (durable) log."""
    opened: list[Broker] = []
    memory = InProcessBroker(partitions=4)

    async def factory() -> Broker:
        if request.param == "in-process":
            broker: Broker = memory
        else:
            broker = InProcessBroker(tmp_path / "broker.sqlite3", partitions=4)
        await broker.create_topics([TOPIC], 4)
        opened.append(broker)
        return broker

    yield factory
    for broker in reversed(opened):
        await broker.close()


def message(key: str, n: int) -> OutgoingMessage:
    return OutgoingMessage(TOPIC, key, f"{key}:{n}".encode(), {"n": str(n)})


async def drain(consumer: object, want: int, timeout: float = 2.0) -> list[Record]:
    records: list[Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(records) < want and loop.time() < deadline:
        records += await consumer.poll(100, 0.1)  # type: ignore[attr-defined]
    return records


async def test_records_of_one_key_share_a_partition_and_keep_their_order(
    open_broker: BrokerFactory,
) -> None:
    broker = await open_broker()
    await broker.producer().send_batch(
        [message(key, n) for n in range(10) for key in ("a", "b", "c")]
    )
    consumer = broker.consumer("g", [TOPIC], "c1")
    records = await drain(consumer, 30)
    for key in ("a", "b", "c"):
        mine = [r for r in records if r.key == key]
        assert [r.value for r in mine] == [f"{key}:{n}".encode() for n in range(10)]
        assert len({r.partition for r in mine}) == 1
    assert records[0].headers["n"] == "0"


async def test_a_group_shares_partitions_between_its_members(open_broker: BrokerFactory) -> None:
    broker = await open_broker()
    await broker.producer().send_batch([message(f"k{i}", i) for i in range(40)])
    first = broker.consumer("g", [TOPIC], "c1")
    second = broker.consumer("g", [TOPIC], "c2")
    got_first = await drain(first, 40, timeout=0.5)
    got_second = await drain(second, 40, timeout=0.5)
    assert {r.partition for r in got_first}.isdisjoint({r.partition for r in got_second})
    assert sorted(r.value for r in got_first + got_second) == sorted(
        f"k{i}:{i}".encode() for i in range(40)
    )


async def test_every_group_reads_everything(open_broker: BrokerFactory) -> None:
    broker = await open_broker()
    await broker.producer().send_batch([message("k", i) for i in range(5)])
    for group in ("one", "two"):
        assert len(await drain(broker.consumer(group, [TOPIC], group), 5)) == 5


async def test_what_was_not_committed_is_delivered_again(open_broker: BrokerFactory) -> None:
    broker = await open_broker()
    await broker.producer().send_batch([message("k", i) for i in range(6)])
    consumer = broker.consumer("g", [TOPIC], "c1")
    records = await drain(consumer, 6)
    partition = records[0].topic_partition
    await consumer.commit({partition: records[3].offset + 1})  # handled 0..3, not 4 and 5
    await consumer.close()

    again = broker.consumer("g", [TOPIC], "c2")
    redelivered = await drain(again, 2)
    assert [r.value for r in redelivered] == [b"k:4", b"k:5"]


async def test_the_log_and_the_offsets_outlive_the_broker(open_broker: BrokerFactory) -> None:
    broker = await open_broker()
    await broker.producer().send_batch([message("k", i) for i in range(3)])
    consumer = broker.consumer("g", [TOPIC], "c1")
    records = await drain(consumer, 3)
    await consumer.commit({TopicPartition(TOPIC, records[0].partition): records[0].offset + 1})
    await consumer.close()

    reopened = await open_broker()
    rest = await drain(reopened.consumer("g", [TOPIC], "c2"), 2)
    assert [r.value for r in rest] == [b"k:1", b"k:2"]


async def test_a_waiting_poll_wakes_when_a_record_arrives(open_broker: BrokerFactory) -> None:
    broker = await open_broker()
    consumer = broker.consumer("g", [TOPIC], "c1")
    polling = asyncio.create_task(consumer.poll(10, timeout=5.0))
    await asyncio.sleep(0.05)
    await broker.producer().send_batch([message("k", 1)])
    records = await asyncio.wait_for(polling, 1.0)
    assert [r.value for r in records] == [b"k:1"]


async def test_a_member_that_lost_a_partition_cannot_commit_for_it(
    open_broker: BrokerFactory,
) -> None:
    broker = await open_broker()
    await broker.producer().send_batch([message(f"k{i}", i) for i in range(20)])
    first = broker.consumer("g", [TOPIC], "c1")
    records = await drain(first, 20)
    second = broker.consumer("g", [TOPIC], "c2")  # takes half of first's partitions
    await first.commit({r.topic_partition: r.offset + 1 for r in records})
    moved = await drain(second, 1, timeout=0.5)
    assert moved, "the partitions that moved are delivered again to their new owner"
