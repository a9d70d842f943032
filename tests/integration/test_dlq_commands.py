"""`ordersaga dlq` on the embedded broker: dead letters listed, shown and replayed.

The commands' own behaviour: their flags, their output, their mistakes. What they rest
on (finding dead letters, a replay handled once) is the contract of every broker
adapter, in tests/contract/test_dead_letters.py.

A tiny counting service runs on a SQLite-backed broker file, as the embedded system
does; it is stopped while the commands run (the file has one writer at a time) and
started again on the same file to handle what was replayed.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from click.testing import Result
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ordersaga.cli.dlq import BROKER_FILE, dlq_app
from ordersaga.cli.dlq_report import pretty_json
from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.headers import DLQ_REPLAYED_FROM
from ordersaga.contracts.messages import OrderUpdated, ProductReservationCancelled
from ordersaga.contracts.statuses import OrderStatus, ReservationCancelStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import ConsumerStats
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import HandlerContext, InvalidMessage, Subscription, one_by_one
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import outbox_table
from ordersaga.messaging.port import OutgoingMessage, Record
from tests.support import until as wait_for

SOURCE = topics.ORDER_UPDATED
DLQ = topics.dead_letter(SOURCE)

metadata = MetaData()
seen = Table(
    "seen",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("times", Integer, nullable=False),
)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


@dataclass
class Service:
    """The counting service's database and broker file, and whether its handler is fixed."""

    data_dir: Path
    engine: AsyncEngine
    broken: bool = True

    async def handle(self, ctx: HandlerContext, message: OrderUpdated) -> None:
        if self.broken:
            raise InvalidMessage("refused by the handler")
        key = str(message.orderID)
        changed = await ctx.conn.execute(
            update(seen).where(seen.c.order_id == key).values(times=seen.c.times + 1)
        )
        if not changed.rowcount:
            await ctx.conn.execute(insert(seen).values(order_id=key, times=1))
        ctx.send(
            topics.PRODUCT_RESERVATION_CANCELLED,
            ProductReservationCancelled(
                orderID=message.orderID,
                productID=1,
                quantity=0,
                status=ReservationCancelStatus.NOTHING_RESERVED,
            ),
        )

    async def run(
        self, until: Callable[[ConsumerStats], bool], send: Sequence[OutgoingMessage] = ()
    ) -> None:
        """Send ``send``, then run the service on the broker file until ``until`` holds."""
        broker = InProcessBroker(self.data_dir / BROKER_FILE)
        await broker.create_topics(topics.with_dead_letters(), 6)
        await broker.producer().send_batch(send)
        endpoint = Endpoint(
            name="counter",
            broker=broker,
            engine=self.engine,
            inbox=inbox,
            outbox=outbox,
            subscriptions=[Subscription(SOURCE, OrderUpdated, one_by_one(self.handle))],
        )
        endpoint.start()
        try:
            await wait_for(lambda: until(endpoint.consumer.stats), 10, "the consumer's stats")
        finally:
            await endpoint.stop()
            await broker.close()

    async def records(self, topic: str) -> list[Record]:
        """What the broker file holds on ``topic``, partition by partition."""
        broker = InProcessBroker(self.data_dir / BROKER_FILE)
        try:
            return broker.records(topic)
        finally:
            await broker.close()

    async def times_seen(self) -> list[int]:
        async with self.engine.connect() as conn:
            return list((await conn.scalars(select(seen.c.times))).all())


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    engine = make_engine(sqlite_url(tmp_path / "svc.sqlite3"))
    await create_schema(engine, metadata)
    yield Service(tmp_path / "data", engine)
    await engine.dispose()


def an_update() -> OutgoingMessage:
    return envelope(
        SOURCE,
        OrderUpdated(
            orderID=uuid4(),
            userID=1,
            productID=1,
            quantity=1,
            amount=Decimal("20.00"),
            status=OrderStatus.ORDER_COMPLETED,
        ),
    )


async def dlq(*args: str, env: dict[str, str] | None = None) -> Result:
    """``ordersaga dlq ARGS``, in a thread: the command runs an event loop of its own."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, dlq_app, list(args), env={"COLUMNS": "400", **(env or {})}
    )


async def poisoned(service: Service) -> tuple[OutgoingMessage, Record, Record]:
    """An update the handler refuses as invalid, and a value that is not JSON, dead-lettered."""
    update_ = an_update()
    poison = OutgoingMessage(SOURCE, str(uuid4()), b"{not json", an_update().headers)
    await service.run(lambda s: s.dead_lettered == 2, send=[update_, poison])
    failed, bad = sorted(await service.records(DLQ), key=lambda r: r.value != update_.value)
    return update_, failed, bad


def at(record: Record) -> list[str]:
    return [record.topic, str(record.partition), str(record.offset)]


async def test_dead_letters_are_listed_with_where_they_came_from_and_why(
    service: Service,
) -> None:
    update_, failed, _ = await poisoned(service)
    result = await dlq("list", "--data-dir", str(service.data_dir))
    assert result.exit_code == 0, result.output
    assert "refused by the handler" in result.output
    assert "not UTF-8 JSON" in result.output
    assert f"{SOURCE}/{failed.headers[h.DLQ_SOURCE_PARTITION]}/" in result.output
    assert update_.key in result.output
    assert "{not json" in result.output
    assert f"{DLQ}: 2 dead letters" in result.output
    only = await dlq("list", "--topic", SOURCE, "--data-dir", str(service.data_dir))
    assert f"{DLQ}: 2 dead letters" in only.output
    other = await dlq("list", "--topic", topics.ORDER_CREATED, "--data-dir", str(service.data_dir))
    assert other.exit_code == 0
    assert "No dead letters on order-created.DLQ" in other.output


async def test_show_prints_the_whole_record(service: Service) -> None:
    update_, failed, bad = await poisoned(service)
    shown = await dlq("show", *at(failed), "--data-dir", str(service.data_dir))
    assert shown.exit_code == 0, shown.output
    assert f"message-id: {update_.headers[h.MESSAGE_ID]}" in shown.output
    assert "dlq-error: invalid message: refused by the handler" in shown.output
    assert "value (JSON):" in shown.output
    assert f'  "orderID": "{update_.key}",' in shown.output
    assert '  "amount": 20.0,' in shown.output
    raw = await dlq("show", *at(bad), "--data-dir", str(service.data_dir))
    assert "value (raw bytes):\nb'{not json'" in raw.output


def test_json_values_are_shown_with_their_numbers_as_written() -> None:
    shown = pretty_json(b'{"amount": 20.00, "big": [12345678901234567.89], "text": "20.00"}')
    assert shown.splitlines() == [
        "{",
        '  "amount": 20.00,',
        '  "big": [',
        "    12345678901234567.89",
        "  ],",
        '  "text": "20.00"',
        "}",
    ]


async def test_a_replay_after_the_fix_is_handled_once_however_often_it_is_replayed(
    service: Service,
) -> None:
    update_, failed, _ = await poisoned(service)
    service.broken = False
    data_dir = ("--data-dir", str(service.data_dir))

    first = await dlq("replay", *at(failed), *data_dir)
    assert first.exit_code == 0, first.output
    assert f"replayed {'/'.join(at(failed))} to {SOURCE} (same message-id)" in first.output
    (replayed,) = [r for r in await service.records(SOURCE) if DLQ_REPLAYED_FROM in r.headers]
    assert replayed.key == update_.key and replayed.value == update_.value
    assert replayed.headers[DLQ_REPLAYED_FROM] == "/".join(at(failed))
    assert replayed.headers[h.MESSAGE_ID] == update_.headers[h.MESSAGE_ID]
    assert [name for name in replayed.headers if name.startswith("dlq-")] == [DLQ_REPLAYED_FROM]
    await service.run(lambda s: s.handled == 1)
    assert await service.times_seen() == [1]

    again = await dlq("replay", *at(failed), "--keep-message-id", *data_dir)
    assert again.exit_code == 0, again.output
    await service.run(lambda s: s.duplicates == 1)
    assert await service.times_seen() == [1]
    assert len(await service.records(DLQ)) == 2, "a replay leaves the dead letter where it is"

    listed = await dlq("list", "--replays", *data_dir)
    row = next(line for line in listed.output.splitlines() if update_.key in line)
    assert row.rstrip(" │").endswith("2")

    fresh = await dlq("replay", *at(failed), "--new-message-id", *data_dir)
    assert "(new message-id)" in fresh.output
    await service.run(lambda s: s.handled == 1)
    assert await service.times_seen() == [2], "a new message-id is a new message"


async def test_replay_all_sends_every_dead_letter_back_and_poison_returns_marked(
    service: Service,
) -> None:
    *_, bad = await poisoned(service)
    service.broken = False
    result = await dlq("replay", DLQ, "--all", "--data-dir", str(service.data_dir))
    assert result.exit_code == 0, result.output
    assert result.output.count("replayed ") == 2
    await service.run(lambda s: s.handled == 1 and s.dead_lettered == 1)
    assert await service.times_seen() == [1]
    dead = await service.records(DLQ)
    (back,) = [r for r in dead if DLQ_REPLAYED_FROM in r.headers]
    assert len(dead) == 3 and back.value == bad.value
    assert back.headers[DLQ_REPLAYED_FROM] == "/".join(at(bad))
    assert "not UTF-8 JSON" in back.headers[h.DLQ_ERROR]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["list", "--topic", "nope"], 2, "unknown dead-letter topic 'nope'"),
        (["show", SOURCE, "0", "0"], 2, f"its dead letters are on {DLQ}"),
        (["show", DLQ, "0", "999"], 1, f"no record at {DLQ}/0/999"),
        (["replay", DLQ], 2, "give PARTITION and OFFSET, or --all"),
        (["replay", DLQ, "0", "1", "--all"], 2, "give PARTITION and OFFSET, or --all"),
        (["replay", DLQ, "0"], 2, "give PARTITION and OFFSET, or --all"),
    ],
)
async def test_a_mistake_gets_one_line_and_an_exit_code(
    service: Service, args: list[str], code: int, says: str
) -> None:
    await service.run(lambda s: True)  # creates the broker file and its topics
    result = await dlq(*args, "--data-dir", str(service.data_dir))
    assert result.exit_code == code
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


async def test_a_data_dir_without_a_broker_or_an_unreachable_kafka_is_said_so(
    tmp_path: Path,
) -> None:
    empty = await dlq("list", "--data-dir", str(tmp_path))
    assert empty.exit_code == 2
    assert f"no embedded broker under {tmp_path}" in empty.stderr
    (tmp_path / BROKER_FILE).write_bytes(b"not a database, certainly" * 100)
    garbage = await dlq("list", "--data-dir", str(tmp_path))
    assert garbage.exit_code == 2
    assert "is not a broker file" in garbage.stderr
    away = await dlq("list", env={"ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert away.exit_code == 3
    assert away.stderr.startswith("Error: cannot reach Kafka at 127.0.0.1:1")
    assert "make infra-up" in away.stderr
    for result in (empty, garbage):
        assert len(result.stderr.strip().splitlines()) == 1
    for result in (empty, garbage, away):
        assert "Traceback" not in result.output


async def test_list_and_show_as_json_say_what_the_dead_letter_topic_holds(
    service: Service,
) -> None:
    await poisoned(service)
    stored = await service.records(DLQ)

    listed = await dlq("list", "--data-dir", str(service.data_dir), "--json")
    document = json.loads(listed.output)

    assert listed.exit_code == 0, listed.output
    assert document["counts"] == {DLQ: 2}
    by_place = {(x["topic"], x["partition"], x["offset"]): x for x in document["letters"]}
    assert set(by_place) == {(r.topic, r.partition, r.offset) for r in stored}
    for record in stored:
        letter = by_place[(record.topic, record.partition, record.offset)]
        assert letter["key"] == record.key
        assert letter["headers"] == dict(record.headers)
        assert letter["error"] == record.headers[h.DLQ_ERROR]
        assert letter["value"] == record.value.decode()
    shown = await dlq("show", *at(stored[0]), "--data-dir", str(service.data_dir), "--json")
    assert (
        json.loads(shown.output)
        == by_place[(stored[0].topic, stored[0].partition, stored[0].offset)]
    )


async def test_list_at_80_columns_keeps_keys_whole(service: Service) -> None:
    await poisoned(service)
    stored = await service.records(DLQ)

    listed = await dlq("list", "--data-dir", str(service.data_dir), env={"COLUMNS": "80"})

    print(listed.output)
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    for record in stored:
        assert record.key in listed.output
        assert f"{record.topic}/{record.partition}/{record.offset}" in listed.output
    assert "refused by the handler" in " ".join(listed.output.split())
