"""The orchestrator as the runtime sees it: tables, subscriptions and the deadline timer."""

from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.config import Settings
from ordersaga.db.retention import inbox_pruner
from ordersaga.saga.clock import DatabaseClock, SagaClock
from ordersaga.saga.retention import saga_pruner
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.store import SagaStore
from ordersaga.saga.timer import run_deadlines
from ordersaga.services.base import ServiceSpec
from ordersaga.services.orchestrator.handlers import subscriptions
from ordersaga.services.orchestrator.place_order import place_order_saga, timeouts
from ordersaga.services.orchestrator.tables import (
    inbox,
    metadata,
    outbox,
    saga_history,
    saga_instances,
)


def place_order_runner(settings: Settings, clock: SagaClock | None = None) -> SagaRunner:
    """The place-order saga on the orchestrator's tables, with the configured timeouts
    and number of compensation attempts, on ``clock`` (default: the database's)."""
    definition = place_order_saga(settings.max_compensation_attempts)
    store = SagaStore(saga_instances, saga_history, definition.name)
    limits = timeouts(
        reserve=settings.reserve_timeout,
        payment=settings.payment_timeout,
        compensation=settings.compensation_timeout,
    )
    return SagaRunner(definition, store, limits, clock or DatabaseClock())


async def seed(conn: AsyncConnection) -> None:
    """Nothing to seed: sagas are created by orders."""
    del conn


def spec(settings: Settings) -> ServiceSpec:
    """The orchestrator: runs the place-order saga, and times out the steps that hang."""
    runner = place_order_runner(settings)
    deadlines = partial(
        run_deadlines, runner=runner, outbox=outbox, interval=settings.timer_interval
    )
    return ServiceSpec(
        name="orchestrator",
        metadata=metadata,
        inbox=inbox,
        outbox=outbox,
        subscriptions=subscriptions(runner),
        seed=seed,
        retention=[
            inbox_pruner(inbox, settings.inbox_window),
            saga_pruner(saga_instances, saga_history, settings.saga_window),
        ],
        retention_interval=settings.retention_interval,
        background=[deadlines],
    )
