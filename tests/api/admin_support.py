"""The embedded system with its admin API, and orders that end every way a saga can."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from ordersaga.config import Settings
from ordersaga.messaging.memory import InProcessBroker, InProcessProducer
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.services.orchestrator.tables import saga_history, saga_instances
from ordersaga.tools.client import OrderClient
from tests.support import until_async

OPERATOR = "ops-alice"
"""The subject of the operator token the admin client sends: what the audit records."""

SETTINGS = Settings(
    reserve_timeout=30,
    payment_timeout=30,
    compensation_timeout=0.3,
    timer_interval=0.02,
    max_compensation_attempts=3,
)


class LossyProducer(InProcessProducer):
    """Loses every message on the topics its broker is told to lose."""

    def __init__(self, broker: "LossyBroker") -> None:
        super().__init__(broker)
        self._lossy = broker

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        await super().send_batch([m for m in messages if m.topic not in self._lossy.losing])


class LossyBroker(InProcessBroker):
    def __init__(self) -> None:
        super().__init__()
        self.losing: set[str] = set()

    def producer(self) -> InProcessProducer:
        return LossyProducer(self)


@dataclass
class Running:
    """The embedded system, its order API, its admin API and its broker."""

    system: EmbeddedSystem
    orders: OrderClient
    admin: httpx.AsyncClient
    broker: LossyBroker

    async def saga_status(self, saga_id: str) -> str | None:
        async with self.system.engines["orchestrator"].connect() as conn:
            return await conn.scalar(
                select(saga_instances.c.status).where(saga_instances.c.saga_id == saga_id)
            )

    async def wait_for_status(self, saga_id: str, status: str, timeout: float = 10.0) -> None:
        async def reached() -> bool:
            return await self.saga_status(saga_id) == status

        await until_async(reached, timeout, f"saga {saga_id} {status}")

    async def history_rows(self, saga_id: str) -> list[dict[str, Any]]:
        query = (
            select(saga_history)
            .where(saga_history.c.saga_id == saga_id)
            .order_by(saga_history.c.seq)
        )
        async with self.system.engines["orchestrator"].connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]

    async def place(self, user: int, product: int, quantity: int) -> str:
        return str((await self.orders.place(user, product, quantity))["orderID"])

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.admin.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def running(data_dir: Path, broker: LossyBroker | None = None) -> AsyncIterator[Running]:
    broker = broker or LossyBroker()
    system = EmbeddedSystem(data_dir, SETTINGS, broker=broker)
    async with system:
        orders = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=system.app), base_url="http://ordersaga"
        )
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=system.admin_app),
            base_url="http://admin",
            headers={"Authorization": f"Bearer {system.tokens.operator(OPERATOR)}"},
        )
        async with orders, admin:
            yield Running(system, OrderClient(orders, system.tokens), admin, broker)


@dataclass(frozen=True)
class Placed:
    """One order of each ending: completed, cancelled by stock, cancelled by payment,
    and parked (its compensation's acknowledgements lost)."""

    completed: str
    stock_cancelled: str
    payment_cancelled: str
    parked: str


async def place_one_of_each(run: Running) -> Placed:
    """Place the four orders; return once each saga is where it stays."""
    # One after the other, so that each saga starts in a batch of its own, later than the
    # one before: their creation times order them.
    completed = await run.place(1, 1, 1)  # 20 of user 1's 100
    await run.wait_for_status(completed, "COMPLETED")
    stock_cancelled = await run.place(2, 3, 5)  # only 3 of product 3
    await run.wait_for_status(stock_cancelled, "CANCELLED")
    payment_cancelled = await run.place(1, 3, 3)  # 150 > 80 left
    await run.wait_for_status(payment_cancelled, "CANCELLED")
    # The stock releases the reservation each time it is asked; the answers are lost.
    run.broker.losing.add("product-reservation-cancelled")
    parked = await run.place(1, 3, 2)  # 100 > 80 left: refused, then the release unanswered
    await run.wait_for_status(parked, "PARKED")
    run.broker.losing.clear()
    return Placed(completed, stock_cancelled, payment_cancelled, parked)
