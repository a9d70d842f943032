"""A service's messaging endpoint: its consumer loop and outbox relay, run together.

It stops in two steps, so that its owner can stop other work in between:
:meth:`Endpoint.stop_consuming` (the batch in hand committed, offsets too, the group
left) and :meth:`Endpoint.stop_relaying` (the outbox drained, the producer closed).
Every wait of a stop is bounded (:mod:`ordersaga.messaging.stopping`).
"""

import asyncio
from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.consumer import ConsumerLoop, CrashPoints
from ordersaga.messaging.handler import Subscription
from ordersaga.messaging.outbox import OutboxRelay, RelayLimits
from ordersaga.messaging.port import Broker
from ordersaga.messaging.stopping import Deadline, bounded, finish
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.observability.tracing import NO_TRACING, Tracing

DEFAULT_GRACE = 10.0
"""Seconds :meth:`Endpoint.stop` takes at most, unless told otherwise."""


class Endpoint:
    """Runs one service replica's messaging: consuming its topics and relaying its outbox."""

    def __init__(
        self,
        *,
        name: str,
        broker: Broker,
        engine: AsyncEngine,
        inbox: Table,
        outbox: Table,
        subscriptions: Sequence[Subscription],
        client_id: str | None = None,
        crash_points: CrashPoints | None = None,
        relay_limits: RelayLimits = RelayLimits(),
        metrics: ServiceMetrics | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.name = name
        self.metrics = metrics or ServiceMetrics.detached(name)
        self.producer = broker.producer()
        self.relay = OutboxRelay(
            engine,
            outbox,
            self.producer,
            limits=relay_limits,
            metrics=self.metrics.relay(),
            tracing=tracing,
        )
        self.transactions = Transactions(engine, outbox, inbox, self.relay.wake, tracing)
        """The units of work of this replica: every one wakes this replica's relay."""
        self.consumer = ConsumerLoop(
            broker=broker,
            group=name,
            client_id=client_id or f"{name}-1",
            transactions=self.transactions,
            subscriptions=subscriptions,
            dlq_producer=self.producer,
            crash_points=crash_points,
            metrics=self.metrics.consumer(name),
            linger=relay_limits.linger,
            commit_every=relay_limits.commit_every,
        )
        self._consuming: asyncio.Task[None] | None = None
        self._relaying: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.consumer._handlers:
            self._consuming = asyncio.create_task(self.consumer.run(), name=f"{self.name}-consumer")
        self._relaying = asyncio.create_task(self.relay.run(), name=f"{self.name}-relay")

    async def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop consuming, then relaying, within ``grace`` seconds in all."""
        deadline = Deadline(grace)
        await self.stop_consuming(deadline.until(0.5))
        await self.stop_relaying(deadline.remaining())

    async def stop_consuming(self, timeout: float) -> None:
        """No more polls; the batch in hand handled and committed, and its offsets; the
        group left. Past ``timeout`` the batch is abandoned (rolled back, not committed:
        the partition's next owner handles it again)."""
        task, self._consuming = self._consuming, None
        if task is None:
            return
        self.consumer.stop()
        await finish(task, timeout, f"{self.name}: the batch in hand")

    async def stop_relaying(self, timeout: float) -> None:
        """Publish what is committed, then close the producer, within ``timeout``: most of
        it for the outbox, at least a second for the producer to deliver and disconnect."""
        deadline = Deadline(timeout)
        task, self._relaying = self._relaying, None
        if task is not None:
            self.relay.stop()
            drain = max(0.0, deadline.remaining() - max(1.0, 0.2 * timeout))
            await finish(task, drain, f"{self.name}: draining the outbox")
        await bounded(
            self.producer.close(), max(1.0, deadline.remaining()), f"{self.name}: producer close"
        )
