"""The orchestrator as the runtime sees it: tables, subscriptions and the deadline timer."""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.retention import inbox_pruner
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.saga.clock import DatabaseClock, SagaClock
from ordersaga.saga.definition import SagaDefinition
from ordersaga.saga.metered import declare
from ordersaga.saga.registry import SagaRegistry
from ordersaga.saga.retention import saga_pruner
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.sampling import sample_sagas
from ordersaga.saga.store import SagaStore
from ordersaga.saga.timer import run_deadlines
from ordersaga.services.base import Sampler, ServiceSpec
from ordersaga.services.orchestrator.handlers import subscriptions
from ordersaga.services.orchestrator.place_order import (
    OUTCOME_TOPIC,
    PLACE_ORDER,
    place_order_saga,
    timeouts,
)
from ordersaga.services.orchestrator.tables import (
    inbox,
    metadata,
    outbox,
    saga_history,
    saga_instances,
)

PLACE_ORDER_VERSIONS: tuple[SagaDefinition, ...] = (PLACE_ORDER,)
"""Every version of the place-order saga this release runs; the highest starts new
sagas. Keep a version here until no unfinished saga needs it (docs/sagas.md)."""


def place_order_runner(
    settings: Settings,
    clock: SagaClock | None = None,
    versions: Sequence[SagaDefinition] = PLACE_ORDER_VERSIONS,
    *,
    current: int | None = None,
    more_timeouts: Mapping[str, float] | None = None,
) -> SagaRunner:
    """The place-order saga's ``versions`` (new sagas on ``current``, default the
    highest) on the orchestrator's tables, with the configured timeouts (and
    ``more_timeouts``, for steps a version adds) and number of compensation attempts, on
    ``clock`` (default: the database's)."""
    attempts = settings.max_compensation_attempts
    registry = SagaRegistry.of(*(place_order_saga(attempts, v) for v in versions), current=current)
    store = SagaStore(saga_instances, saga_history, registry.name)
    limits = timeouts(
        reserve=settings.reserve_timeout,
        payment=settings.payment_timeout,
        compensation=settings.compensation_timeout,
    )
    limits = {**limits, **(more_timeouts or {})}
    return SagaRunner(registry, store, limits, clock or DatabaseClock())


async def seed(conn: AsyncConnection) -> None:
    """Nothing to seed: sagas are created by orders."""
    del conn


def spec(
    settings: Settings,
    runner: SagaRunner | None = None,
    *,
    metrics: ServiceMetrics | None = None,
) -> ServiceSpec:
    """The orchestrator: runs the place-order saga (or ``runner``'s), and times out the
    steps that hang. It refuses to start while unfinished sagas need a version it does
    not register. What its sagas do is counted in ``metrics``, and the sagas parked,
    overdue and unfinished are sampled from its database."""
    runner = runner or place_order_runner(settings)
    samplers: list[Sampler] = []
    if metrics is not None:
        sagas = metrics.sagas()
        declare(sagas, runner.definitions.versions.values())
        runner = replace(runner, metrics=sagas)
        samplers.append(partial(sample_sagas, runner, metrics))
    deadlines = partial(run_deadlines, runner=runner, interval=settings.timer_interval)
    return ServiceSpec(
        name="orchestrator",
        metadata=metadata,
        inbox=inbox,
        outbox=outbox,
        subscriptions=subscriptions(runner),
        # Every version's commands and compensations, and the outcome (place_order.py).
        produces=[*runner.definitions.commands, OUTCOME_TOPIC],
        seed=seed,
        retention=[
            inbox_pruner(inbox, settings.inbox_window),
            saga_pruner(saga_instances, saga_history, settings.saga_window),
        ],
        retention_interval=settings.retention_interval,
        background=[deadlines],
        startup_checks=[partial(check_saga_versions, runner)],
        samplers=samplers,
    )


async def check_saga_versions(runner: SagaRunner, engine: AsyncEngine) -> None:
    """Raise :class:`~ordersaga.saga.registry.MissingSagaVersions` when the database holds
    unfinished sagas of a version ``runner`` does not register."""
    async with engine.connect() as conn:
        await runner.check_versions(conn)
