"""The consumer loop, outbox relay and inbox, around a tiny counting service."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts import headers as h
from ordersaga.contracts import topics
from ordersaga.contracts.messages import OrderUpdated, ProductReservationCancelled
from ordersaga.contracts.statuses import OrderStatus, ReservationCancelStatus
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import ConsumerLoop
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.envelope import envelope
from ordersaga.messaging.handler import HandlerContext, InvalidMessage, Subscription, one_by_one
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.messaging.outbox import outbox_table
from ordersaga.messaging.port import OutgoingMessage, Record
from ordersaga.messaging.unit_of_work import Transactions
from tests.fault_kinds import SURROUNDINGS, UNEXPECTED
from tests.support import until

metadata = MetaData()
seen = Table(
    "seen",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("times", Integer, nullable=False),
)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)


class Flaky:
    """Fails the first ``transient`` calls like an unreachable database, then ``broken``
    calls like a bug, then ``faults`` calls with ``fault``; with ``only``, just the calls
    for that order fail. ``invalid`` orders are refused as invalid messages. Before each
    failure it notes what the group had committed, for the test to look at."""

    def __init__(
        self,
        transient: int = 0,
        broken: int = 0,
        only: UUID | None = None,
        *,
        faults: int = 0,
        fault: Callable[[], Exception] = lambda: ValueError("a bug"),
        invalid: Collection[UUID] = (),
        broker: InProcessBroker | None = None,
    ) -> None:
        self.transient, self.broken, self.only = transient, broken, only
        self.faults, self.fault, self.invalid = faults, fault, set(invalid)
        self.broker = broker
        self.committed_while_failing: list[dict[tuple[str, int], int]] = []

    def __call__(self, order_id: UUID) -> None:
        if order_id in self.invalid:
            raise InvalidMessage(f"order {order_id} is not one this service could ever handle")
        if self.only is not None and order_id != self.only:
            return
        if self.broker is not None and (self.transient or self.broken or self.faults):
            self.committed_while_failing.append(dict(self.broker.committed("counter")))
        if self.transient:
            self.transient -= 1
            raise OperationalError("SELECT 1", {}, Exception("database is away"))
        if self.broken:
            self.broken -= 1
            raise ValueError("a bug")
        if self.faults:
            self.faults -= 1
            raise self.fault()


async def count_and_answer(ctx: HandlerContext, message: OrderUpdated, fault: Flaky) -> None:
    fault(message.orderID)
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


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "svc.sqlite3"))
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


def an_update() -> OutgoingMessage:
    return envelope(
        topics.ORDER_UPDATED,
        OrderUpdated(
            orderID=uuid4(),
            userID=1,
            productID=1,
            quantity=1,
            amount=Decimal("20"),
            status=OrderStatus.ORDER_COMPLETED,
        ),
    )


async def run_endpoint(
    broker: InProcessBroker, engine: AsyncEngine, fault: Flaky, crash_points: object = None
) -> Endpoint:
    async def handle(ctx: HandlerContext, message: OrderUpdated) -> None:
        await count_and_answer(ctx, message, fault)

    endpoint = Endpoint(
        name="counter",
        broker=broker,
        engine=engine,
        inbox=inbox,
        outbox=outbox,
        subscriptions=[Subscription(topics.ORDER_UPDATED, OrderUpdated, one_by_one(handle))],
        crash_points=crash_points,
    )  # type: ignore[arg-type]
    endpoint.start()
    return endpoint


async def times_seen(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.scalars(select(seen.c.times))).all())


async def test_a_duplicate_is_applied_once_and_answered_once(engine: AsyncEngine) -> None:
    broker = InProcessBroker()
    message = an_update()
    await broker.producer().send_batch([message, message, message])
    endpoint = await run_endpoint(broker, engine, Flaky())
    await until(lambda: len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 1)
    await until(lambda: endpoint.consumer.stats.duplicates == 2)
    await until(lambda: endpoint.relay.published == 1)  # sent, and its row deleted
    await endpoint.stop()
    assert await times_seen(engine) == [1]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    good = an_update()
    bad = OutgoingMessage(topics.ORDER_UPDATED, good.key, b"{not json", good.headers)
    wrong = OutgoingMessage(topics.ORDER_UPDATED, good.key, b'{"orderID": "x"}', good.headers)
    await broker.producer().send_batch([bad, wrong, an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky())
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    dead = broker.records(topics.dead_letter(topics.ORDER_UPDATED))
    assert [r.value for r in dead] == [b"{not json", b'{"orderID": "x"}']
    assert "not UTF-8 JSON" in dead[0].headers["dlq-error"]
    assert "orderID" in dead[1].headers["dlq-error"]
    assert dead[0].headers["dlq-source-topic"] == topics.ORDER_UPDATED
    assert dead[0].headers["dlq-consumer"] == "counter"
    assert {r.headers["dlq-source-offset"] for r in dead} == {"0", "1"}


async def test_a_transient_fault_is_retried_until_it_passes(engine: AsyncEngine) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky(transient=3))
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    assert await times_seen(engine) == [1]
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []


@pytest.mark.parametrize(
    "fault", [*SURROUNDINGS.values(), *UNEXPECTED.values()], ids=[*SURROUNDINGS, *UNEXPECTED]
)
async def test_every_failure_but_the_messages_own_is_retried_until_it_passes(
    engine: AsyncEngine, fault: Callable[[], Exception]
) -> None:
    broker = InProcessBroker()
    message = an_update()
    await broker.producer().send_batch([message])
    flaky = Flaky(faults=4, fault=fault, broker=broker)
    endpoint = await run_endpoint(broker, engine, flaky)
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    assert flaky.committed_while_failing == [{}] * 4, "no offset committed while failing"
    assert broker.committed("counter") == {(topics.ORDER_UPDATED, partition_of(broker, message)): 1}
    assert await times_seen(engine) == [1]
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []
    assert endpoint.consumer.stats.retries == 4
    assert endpoint.consumer.stats.failing_since is None


def partition_of(broker: InProcessBroker, message: OutgoingMessage) -> int:
    (record,) = [r for r in broker.records(message.topic) if r.key == message.key]
    return record.partition


async def test_a_long_failure_is_counted_while_it_lasts_and_logged_without_flooding(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ordersaga.messaging")
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    pool_timeout = SURROUNDINGS["pool-timeout"]
    endpoint = await run_endpoint(broker, engine, Flaky(faults=1_000_000, fault=pool_timeout))
    stats = endpoint.consumer.stats
    await until(lambda: stats.retries >= 6)
    assert stats.failing_since is not None and stats.handled == 0
    await endpoint.stop()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert failures[0].levelno == logging.WARNING
    assert "QueuePool limit" in failures[0].getMessage()
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []
    assert broker.committed("counter") == {}


async def test_a_bug_is_logged_with_its_traceback_and_retried_until_fixed(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ordersaga.messaging")
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky(broken=5))
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    assert endpoint.consumer.stats.unexpected == 5
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "a bug" in error.getMessage() and error.exc_info is not None
    assert any("succeeded after 5 failed attempts" in r.getMessage() for r in caplog.records)
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []


async def test_a_message_its_handler_calls_invalid_is_dead_lettered_alone(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker(partitions=1)
    good, bad, later = an_update(), an_update(), an_update()
    await broker.producer().send_batch([good, bad, later])
    endpoint = await run_endpoint(broker, engine, Flaky(invalid=[UUID(bad.key)]))
    await until(lambda: endpoint.consumer.stats.handled == 2)
    await until(lambda: endpoint.consumer.stats.dead_lettered == 1)
    await endpoint.stop()
    (dead,) = broker.records(topics.dead_letter(topics.ORDER_UPDATED))
    assert dead.key == bad.key and dead.value == bad.value
    assert dead.headers["dlq-error"].startswith("invalid message: order ")
    assert await times_seen(engine) == [1, 1]
    answered = {r.key for r in broker.records(topics.PRODUCT_RESERVATION_CANCELLED)}
    assert answered == {good.key, later.key}
    assert endpoint.consumer.stats.batches == 1, "the rest of the batch in one transaction"
    assert broker.committed("counter") == {(topics.ORDER_UPDATED, 0): 3}


async def test_a_transient_fault_retries_the_whole_batch_and_applies_each_message_once(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update() for _ in range(5)])
    endpoint = await run_endpoint(broker, engine, Flaky(transient=2))
    await until(lambda: endpoint.consumer.stats.handled == 5)
    await endpoint.stop()
    assert await times_seen(engine) == [1] * 5
    assert len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 5
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []


class CrashOnce:
    def __init__(self) -> None:
        self.crashed = False

    def after_db_commit(self, record: Record) -> bool:
        crash, self.crashed = not self.crashed, True
        return crash


async def test_a_crash_between_database_and_offset_commit_redelivers_harmlessly(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    await broker.producer().send_batch([an_update()])
    endpoint = await run_endpoint(broker, engine, Flaky(), crash_points=CrashOnce())
    await until(lambda: endpoint.consumer.stats.duplicates == 1)
    await endpoint.stop()
    assert endpoint.consumer.stats.crashes == 1
    assert await times_seen(engine) == [1]
    assert len(broker.records(topics.PRODUCT_RESERVATION_CANCELLED)) == 1
    assert broker.committed("counter") == {
        (topics.ORDER_UPDATED, r.partition): 1 for r in broker.records(topics.ORDER_UPDATED)
    }


def with_value(message: OutgoingMessage, value: bytes, **headers: str) -> OutgoingMessage:
    return OutgoingMessage(message.topic, message.key, value, {**message.headers, **headers})


async def test_a_message_with_fields_the_consumer_does_not_know_is_handled(
    engine: AsyncEngine,
) -> None:
    broker = InProcessBroker()
    message = an_update()
    fields = json.loads(message.value)
    added = with_value(message, json.dumps({**fields, "currency": "EUR", "v2": {"x": 1}}).encode())
    await broker.producer().send_batch([added])
    endpoint = await run_endpoint(broker, engine, Flaky())
    await until(lambda: endpoint.consumer.stats.handled == 1)
    await endpoint.stop()
    assert await times_seen(engine) == [1]
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []


async def test_known_fields_are_still_checked(engine: AsyncEngine) -> None:
    broker = InProcessBroker()
    message = an_update()
    fields = json.loads(message.value)
    negative = with_value(message, json.dumps({**fields, "amount": -5, "extra": 1}).encode())
    too_big = with_value(message, json.dumps({**fields, "quantity": 2**31}).encode())
    no_version = with_value(message, message.value, **{h.SCHEMA_VERSION: "one"})
    await broker.producer().send_batch([negative, too_big, no_version])
    endpoint = await run_endpoint(broker, engine, Flaky())
    await until(lambda: endpoint.consumer.stats.dead_lettered == 3)
    await endpoint.stop()
    errors = sorted(
        r.headers["dlq-error"] for r in broker.records(topics.dead_letter(message.topic))
    )
    assert "amount" in errors[0] and "quantity" in errors[1]
    assert "schema-version 'one'" in errors[2]
    assert await times_seen(engine) == []


def loop_reading(
    broker: InProcessBroker, engine: AsyncEngine, version: str, client_id: str
) -> ConsumerLoop:
    async def handle(ctx: HandlerContext, message: OrderUpdated) -> None:
        await count_and_answer(ctx, message, Flaky())

    return ConsumerLoop(
        broker=broker,
        group="counter",
        client_id=client_id,
        transactions=Transactions(engine, outbox, inbox),
        subscriptions=[Subscription(topics.ORDER_UPDATED, OrderUpdated, one_by_one(handle))],
        dlq_producer=broker.producer(),
        schema_version=version,
    )


async def test_a_newer_schema_version_waits_for_a_replica_that_reads_it(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ordersaga.messaging")
    broker = InProcessBroker(partitions=1)
    before, newer, after = an_update(), an_update(), an_update()
    newer = with_value(newer, newer.value, **{h.SCHEMA_VERSION: "2"})
    await broker.producer().send_batch([before, newer, after])
    old = loop_reading(broker, engine, "1", "counter-old")
    running = asyncio.create_task(old.run())
    await until(lambda: old.stats.newer_schema >= 3, timeout=15)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert old.stats.handled == 1 and old.stats.dead_lettered == 0
    assert broker.committed("counter") == {(topics.ORDER_UPDATED, 0): 1}
    said = [r.getMessage() for r in caplog.records if "schema-version 2" in r.getMessage()]
    assert len(said) == 1, said
    assert "reads up to 1" in said[0]

    new = loop_reading(broker, engine, "2", "counter-new")
    running = asyncio.create_task(new.run())
    await until(lambda: new.stats.handled == 2)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert await times_seen(engine) == [1, 1, 1]
    assert broker.records(topics.dead_letter(topics.ORDER_UPDATED)) == []
    assert broker.committed("counter") == {(topics.ORDER_UPDATED, 0): 3}
