"""Deadlines on the database's clock: replicas whose own clocks differ agree on them."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.contracts.messages import OrderCreated
from ordersaga.db.timestamps import utc_now
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.clock import DatabaseClock
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaStatus
from ordersaga.saga.timer import fire_due_deadlines
from ordersaga.services.orchestrator.place_order import order_data
from ordersaga.services.orchestrator.tables import outbox
from ordersaga.services.orchestrator.wiring import place_order_runner
from tests.persistence.conftest import Databases
from tests.persistence.support import order_message

SETTINGS = Settings(reserve_timeout=30, payment_timeout=20, compensation_timeout=10)
HOUR = timedelta(hours=1)

# Where the database has a clock of its own. Not SQLite: it is a file, not a server; the
# embedded system that uses it is one process, so that process's clock is the one clock.
SERVER_BACKENDS = ["postgresql", "mariadb"]


def replica(process_ahead_by: timedelta, offset: timedelta = timedelta(0)) -> SagaRunner:
    """An orchestrator replica whose own clock is ``process_ahead_by`` ahead."""
    clock = DatabaseClock(offset=offset, process_clock=lambda: utc_now() + process_ahead_by)
    return place_order_runner(SETTINGS, clock=clock)


async def start(engine: AsyncEngine, runner: SagaRunner) -> str:
    saga_id = str(uuid4())
    message = order_message(OrderCreated, order_id=uuid4())
    async with engine.begin() as conn:
        await runner.start(conn, saga_id, {**order_data(message), "orderID": saga_id})
    return saga_id


async def status(engine: AsyncEngine, runner: SagaRunner, saga_id: str) -> SagaStatus:
    async with engine.connect() as conn:
        stored = await runner.store.get(conn, saga_id)
    assert stored is not None
    return stored.state.status


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_the_clock_is_the_servers_not_the_processes(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    ahead = DatabaseClock(process_clock=lambda: utc_now() + HOUR)
    skipping = DatabaseClock(offset=timedelta(seconds=90), process_clock=lambda: utc_now() + HOUR)

    async with engine.connect() as conn:
        before = utc_now()
        now = await ahead.now(conn)
        later = await skipping.now(conn)
        after = utc_now()

    # The server runs on this machine: its time is this process's true time, give or take.
    slack = timedelta(seconds=5)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before - slack <= now <= after + slack
    assert before - slack + timedelta(seconds=90) <= later <= after + slack + timedelta(seconds=90)


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_a_replica_whose_clock_runs_ahead_does_not_time_out_sagas_early(
    db: Databases,
) -> None:
    engine = await db.fresh("orchestrator")
    on_time = replica(timedelta(0))
    ahead = replica(HOUR)
    saga_id = await start(engine, on_time)
    started_by_ahead = await start(engine, ahead)

    fired_by_ahead = await fire_due_deadlines(Transactions(engine, outbox), ahead)
    fired_on_time = await fire_due_deadlines(Transactions(engine, outbox), on_time)

    assert (fired_by_ahead, fired_on_time) == (0, 0)
    assert await status(engine, on_time, saga_id) is SagaStatus.RUNNING
    assert await status(engine, on_time, started_by_ahead) is SagaStatus.RUNNING
    async with engine.connect() as conn:
        stored = await on_time.store.get(conn, started_by_ahead)
    assert stored is not None and stored.state.deadline is not None
    # Set from the server's time, not the hour-ahead process's.
    assert stored.state.deadline - utc_now() < timedelta(seconds=30 + 5)

    # Skipping past the 30 s reserve timeout on the server's clock fires both.
    past_the_deadline = replica(HOUR, offset=timedelta(seconds=31))
    assert await fire_due_deadlines(Transactions(engine, outbox), past_the_deadline) == 2
    assert await status(engine, on_time, saga_id) is SagaStatus.COMPENSATING


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_without_a_server_the_clock_is_the_processes(db: Databases) -> None:
    engine = await db.fresh("orchestrator")
    then = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    clock = DatabaseClock(offset=timedelta(seconds=2), process_clock=lambda: then)

    async with engine.connect() as conn:
        now = await clock.now(conn)

    assert now == then + timedelta(seconds=2)
