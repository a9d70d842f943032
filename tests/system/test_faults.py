"""Concurrency, redelivery and restarts of the embedded system: invariants still hold."""

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ordersaga.messaging.memory import InProcessBroker, InProcessProducer
from ordersaga.messaging.port import OutgoingMessage, Record
from tests.system.conftest import assert_invariants, embedded


async def place_many(api, orders: Sequence[tuple[int, int, int]]) -> list[str]:  # type: ignore[no-untyped-def]
    placed = await asyncio.gather(*(api.place(u, p, q) for u, p, q in orders))
    return [o["orderID"] for o in placed]


async def test_orders_racing_for_little_stock_and_money(tmp_path: Path) -> None:
    rng = random.Random(7)
    orders = [(rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 2)) for _ in range(150)]
    async with embedded(tmp_path) as (system, api):
        ids = await place_many(api, orders)
        await assert_invariants(system)
        statuses = Counter([(await api.get(i))["status"] for i in ids])
    assert statuses["ORDER_COMPLETED"] > 0 and statuses["ORDER_CANCELLED"] > 0
    assert sum(statuses.values()) == 150


async def test_fifty_orders_for_the_last_three_units(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (system, api):
        ids = await place_many(api, [(3, 3, 1)] * 50)  # user 3 could pay for 4
        await assert_invariants(system)
        statuses = Counter([(await api.get(i))["status"] for i in ids])
    assert statuses == {"ORDER_COMPLETED": 3, "ORDER_CANCELLED": 47}


class TwiceProducer(InProcessProducer):
    """Publishes every message twice, as a producer retrying after a lost ack would."""

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        await super().send_batch([m for message in messages for m in (message, message)])


class DuplicatingBroker(InProcessBroker):
    def producer(self) -> InProcessProducer:
        return TwiceProducer(self)


class CrashSometimes:
    """Kills a consumer after its database commit, before its offset commit: at a chosen
    share of the records, once each (a consumer that died at every record would never
    commit an offset again)."""

    def __init__(self, seed: int, probability: float) -> None:
        self._rng = random.Random(seed)
        self._probability = probability
        self._decided: set[tuple[str, int, int]] = set()
        self.crashes = 0

    def after_db_commit(self, record: Record) -> bool:
        where = (record.topic, record.partition, record.offset)
        if where in self._decided:
            return False
        self._decided.add(where)
        crash = self._rng.random() < self._probability
        self.crashes += crash
        return crash


async def test_every_message_twice_and_consumers_killed_before_their_offset_commit(
    tmp_path: Path,
) -> None:
    crashes = CrashSometimes(seed=11, probability=0.1)
    broker = DuplicatingBroker()
    rng = random.Random(3)
    orders = [(rng.randint(1, 3), rng.randint(1, 3), 1) for _ in range(60)]
    async with embedded(tmp_path, broker=broker, crash_points=crashes) as (system, api):
        await place_many(api, orders)
        await assert_invariants(system)
        duplicates = sum(e.consumer.stats.duplicates for e in system.endpoints.values())
        handled = sum(e.consumer.stats.handled for e in system.endpoints.values())
    await broker.close()
    assert crashes.crashes > 0
    assert duplicates >= handled, "every message arrived at least twice, once was applied"


async def test_a_system_stopped_mid_flight_finishes_every_saga_after_a_restart(
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    orders = [(rng.randint(1, 3), rng.randint(1, 3), 1) for _ in range(80)]
    async with embedded(tmp_path) as (system, api):
        ids = await place_many(api, orders)
        interrupted = await system.pending_orders()
    # Stopped mid-flight: consumers cancelled wherever they were, offsets not committed.
    assert interrupted > 0, "the stop should catch sagas in flight"
    async with embedded(tmp_path) as (system, api):
        await assert_invariants(system)
        statuses = {(await api.get(i))["status"] for i in ids}
    assert statuses <= {"ORDER_COMPLETED", "ORDER_CANCELLED"}
