"""The embedded system stopped cleanly in the middle of a batch of orders: every outbox
is drained by the stop, and started again on the same broker and data, every saga ends
at once, none by a deadline."""

import asyncio
import random
from pathlib import Path

from sqlalchemy import func, select

from ordersaga.config import Settings
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.runtime.embedded import EmbeddedSystem, embedded_engines
from ordersaga.services.orchestrator.tables import outbox
from tests.support import until
from tests.system.conftest import api_of, assert_invariants

ORDERS = 40


async def outbox_rows(data_dir: Path) -> dict[str, int]:
    engines = embedded_engines(data_dir)
    rows: dict[str, int] = {}
    try:
        for name, engine in engines.items():
            async with engine.connect() as conn:
                rows[name] = int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)
    finally:
        for engine in engines.values():
            await engine.dispose()
    return rows


async def test_a_clean_stop_mid_flight_drains_the_outboxes_and_loses_nothing(
    tmp_path: Path,
) -> None:
    broker = InProcessBroker()
    # Long deadlines: a message lost in the stop would leave its saga waiting for one.
    settings = Settings(reserve_timeout=60, payment_timeout=60, compensation_timeout=60)
    rng = random.Random(3)
    system = EmbeddedSystem(tmp_path, settings, broker=broker)
    async with system, api_of(system) as client:
        placed = await asyncio.gather(
            *(client.place(rng.randint(1, 3), rng.randint(1, 3)) for _ in range(ORDERS))
        )
        await until(lambda: system.endpoints["orchestrator"].consumer.stats.handled > 0)
        assert await system.pending_orders(), "the stop should come mid-flight"

    left = await outbox_rows(tmp_path)
    assert not any(left.values()), f"rows left in the outboxes: {left}"

    again = EmbeddedSystem(tmp_path, settings, broker=broker)
    async with again, api_of(again) as client:
        assert await again.wait_until_quiet(timeout=10), "sagas left waiting after the restart"
        orders = [await client.get(p["orderID"]) for p in placed]
        await assert_invariants(again)
    reasons = [o["reason"] for o in orders if o["reason"]]
    assert not [r for r in reasons if "did not answer within" in r], reasons
