"""What every service hands to the wiring: its tables, subscriptions, seed and tasks."""

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts.topics import dead_letter
from ordersaga.db.retention import Pruner
from ordersaga.messaging.handler import Subscription
from ordersaga.messaging.unit_of_work import Transactions

BackgroundTask = Callable[[Transactions], Coroutine[Any, Any, None]]
"""A loop a service runs beside its consumer (the orchestrator's deadline timer), in the
replica's units of work."""
StartupCheck = Callable[[AsyncEngine], Awaitable[None]]
"""Run on the service's database before it starts; raises to refuse the start."""
Sampler = Callable[[AsyncConnection], Awaitable[None]]
"""Reads figures from the service's database into its gauges (the sagas parked...)."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    metadata: MetaData
    inbox: Table
    outbox: Table
    subscriptions: Sequence[Subscription]
    seed: Callable[[AsyncConnection], Awaitable[None]]
    produces: Sequence[str] = ()
    """Every topic the service sends on (through its outbox), besides the dead-letter
    topics of what it consumes: what its Kafka principal may write."""
    background: Sequence[BackgroundTask] = ()
    retention: Sequence[Pruner] = ()
    """What the service prunes (its inbox; the orchestrator its finished sagas), run in
    the background every ``retention_interval`` seconds and by ``ordersaga prune``."""
    retention_interval: float = 60.0
    startup_checks: Sequence[StartupCheck] = ()
    """What must hold before the service starts (the orchestrator: every unfinished
    saga's definition version is registered); each raises, saying why, if not."""
    samplers: Sequence[Sampler] = ()
    """Run every ``ORDERSAGA_METRICS_INTERVAL`` seconds, besides the sampling of the
    outbox every service gets, to set the service's gauges from its database."""

    @property
    def group(self) -> str:
        """Its consumer group, which every replica joins."""
        return f"{self.name}-service"

    @property
    def consumes(self) -> tuple[str, ...]:
        """The topics it subscribes to, each once, in order."""
        return tuple(dict.fromkeys(s.topic for s in self.subscriptions))

    @property
    def dead_letters(self) -> tuple[str, ...]:
        """The dead-letter topics it writes poison to: those of the topics it consumes."""
        return tuple(dead_letter(topic) for topic in self.consumes)

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic it uses, each once: what a replica creates if absent and checks."""
        return tuple(dict.fromkeys((*self.produces, *self.consumes, *self.dead_letters)))


async def run_startup_checks(spec: ServiceSpec, engine: AsyncEngine) -> None:
    """Run ``spec``'s startup checks on ``engine``; the first that fails raises."""
    for check in spec.startup_checks:
        await check(engine)
