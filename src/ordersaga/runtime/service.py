"""One replica of one service: its messaging endpoint and background loops, on its
database and a broker. Both ways of running the system are made of these."""

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.retention import run_retention
from ordersaga.messaging.consumer import CrashPoints
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.outbox import RelayLimits
from ordersaga.messaging.port import Broker
from ordersaga.services.base import ServiceSpec


def relay_limits(settings: Settings) -> RelayLimits:
    """The outbox relay's timeouts, from the settings."""
    return RelayLimits(
        send_timeout=settings.relay_send_timeout, lock_timeout=settings.relay_lock_timeout
    )


class ServiceReplica:
    """Consumes the service's topics, relays its outbox and runs its background loops."""

    def __init__(
        self,
        spec: ServiceSpec,
        engine: AsyncEngine,
        broker: Broker,
        *,
        replica: str = "1",
        crash_points: CrashPoints | None = None,
        relay_limits: RelayLimits = RelayLimits(),
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.endpoint = Endpoint(
            name=f"{spec.name}-service",
            broker=broker,
            engine=engine,
            inbox=spec.inbox,
            outbox=spec.outbox,
            subscriptions=spec.subscriptions,
            client_id=f"{spec.name}-{replica}",
            crash_points=crash_points,
            relay_limits=relay_limits,
        )
        self._background: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.endpoint.start()
        for task in self.spec.background:
            loop = task(self.endpoint.transactions)
            self._background.append(asyncio.create_task(loop, name=f"{self.spec.name}-loop"))
        if self.spec.retention:
            pruning = run_retention(self.engine, self.spec.retention, self.spec.retention_interval)
            self._background.append(asyncio.create_task(pruning, name=f"{self.spec.name}-prune"))

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        await self.endpoint.stop()
