"""What every service hands to the wiring: its tables, subscriptions, seed and tasks."""

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.db.retention import Pruner
from ordersaga.messaging.handler import Subscription

WakeRelay = Callable[[], None]
BackgroundTask = Callable[[AsyncEngine, WakeRelay], Coroutine[Any, Any, None]]
"""A loop a service runs beside its consumer (the orchestrator's deadline timer)."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    metadata: MetaData
    inbox: Table
    outbox: Table
    subscriptions: Sequence[Subscription]
    seed: Callable[[AsyncConnection], Awaitable[None]]
    background: Sequence[BackgroundTask] = ()
    retention: Sequence[Pruner] = ()
    """What the service prunes (its inbox; the orchestrator its finished sagas), run in
    the background every ``retention_interval`` seconds and by ``ordersaga prune``."""
    retention_interval: float = 60.0
