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
from ordersaga.messaging.stopping import CANCEL_WAIT, Deadline, bounded, finish
from ordersaga.observability.logs import log_context
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.observability.tracing import NO_TRACING, Tracing
from ordersaga.runtime.metrics import sample_gauges
from ordersaga.services.base import ServiceSpec


def relay_limits(settings: Settings) -> RelayLimits:
    """The outbox relay's timeouts and linger, and its consumer's batching, from the settings."""
    return RelayLimits(
        send_timeout=settings.relay_send_timeout,
        lock_timeout=settings.relay_lock_timeout,
        linger=settings.batch_linger,
        commit_every=settings.offset_commit_interval,
    )


class ServiceReplica:
    """Consumes the service's topics, relays its outbox and runs its background loops.

    Its spans go to ``tracing``, which it shuts down (exporting what is left) when it stops.
    """

    def __init__(
        self,
        spec: ServiceSpec,
        engine: AsyncEngine,
        broker: Broker,
        *,
        replica: str = "1",
        crash_points: CrashPoints | None = None,
        relay_limits: RelayLimits = RelayLimits(),
        metrics: ServiceMetrics | None = None,
        metrics_interval: float = 5.0,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.replica = replica
        self.tracing = tracing
        self.metrics = metrics or ServiceMetrics.detached(spec.name)
        self._metrics_interval = metrics_interval
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
            metrics=self.metrics,
            tracing=tracing,
        )
        self._background: list[asyncio.Task[None]] = []

    def start(self) -> None:
        # Tasks started in here log as this replica's (they copy the context).
        with log_context(service=self.spec.name, replica=f"{self.spec.name}-{self.replica}"):
            self._start()

    def _start(self) -> None:
        self.endpoint.start()
        for task in self.spec.background:
            loop = task(self.endpoint.transactions)
            self._background.append(asyncio.create_task(loop, name=f"{self.spec.name}-loop"))
        if self.spec.retention:
            pruning = run_retention(self.engine, self.spec.retention, self.spec.retention_interval)
            self._background.append(asyncio.create_task(pruning, name=f"{self.spec.name}-prune"))
        gauges = sample_gauges(
            self.spec, self.engine, self.endpoint.producer, self.metrics, self._metrics_interval
        )
        self._background.append(asyncio.create_task(gauges, name=f"{self.spec.name}-gauges"))

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
        if self.tracing.enabled:
            # On a thread: an exporter whose collector is away blocks while it retries.
            exporting = asyncio.to_thread(self.tracing.shutdown)
            await bounded(exporting, max(1.0, deadline.remaining()), "exporting the last spans")
