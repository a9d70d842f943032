"""One replica of one service: its messaging endpoint and background loops, on its
database and a broker. Both ways of running the system are made of these."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.db.retention import run_retention
from ordersaga.messaging.consumer import CrashPoints
from ordersaga.messaging.endpoint import DEFAULT_GRACE, Endpoint
from ordersaga.messaging.outbox import RelayLimits
from ordersaga.messaging.port import Broker
from ordersaga.messaging.stopping import CANCEL_WAIT, Deadline, finish
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
            name=spec.group,
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

    async def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop within about ``grace`` seconds, in the order that loses no work: the
        consumer after its batch in hand (offsets committed, group left), then the
        background loops (cancelled: a round cut short rolls back and is done again by
        whichever replica runs next), then the relay once the outbox is drained, then
        the producer. The API, if any, is its caller's to stop first."""
        deadline = Deadline(grace)
        await self.endpoint.stop_consuming(deadline.until(0.5))
        for task in self._background:
            task.cancel()
        for task in self._background:
            await finish(task, CANCEL_WAIT, task.get_name())
        self._background.clear()
        await self.endpoint.stop_relaying(deadline.remaining())
