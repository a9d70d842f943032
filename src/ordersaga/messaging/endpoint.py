"""A service's messaging endpoint: its consumer loop and outbox relay, run together."""

import asyncio
import contextlib
from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.consumer import ConsumerLoop, CrashPoints
from ordersaga.messaging.handler import Subscription
from ordersaga.messaging.outbox import OutboxRelay, RelayLimits
from ordersaga.messaging.port import Broker
from ordersaga.messaging.unit_of_work import Transactions


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
    ) -> None:
        self.name = name
        self._producer = broker.producer()
        self.relay = OutboxRelay(engine, outbox, self._producer, limits=relay_limits)
        self.transactions = Transactions(engine, outbox, inbox, self.relay.wake)
        """The units of work of this replica: every one wakes this replica's relay."""
        self.consumer = ConsumerLoop(
            broker=broker,
            group=name,
            client_id=client_id or f"{name}-1",
            transactions=self.transactions,
            subscriptions=subscriptions,
            dlq_producer=self._producer,
            crash_points=crash_points,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.consumer._handlers:
            self._tasks.append(
                asyncio.create_task(self.consumer.run(), name=f"{self.name}-consumer")
            )
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._producer.close()
