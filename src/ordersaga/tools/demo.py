"""``ordersaga demo``: the original demo's scenarios and a few hundred random orders,
on a fresh embedded system, then every invariant checked.

It shows nothing itself: what it found goes to the callbacks it is given, and what it
returns is plain data (``ordersaga.cli.demo`` draws it).
"""

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ordersaga.config import Settings
from ordersaga.observability.serving import MetricsPortInUse, MetricsServer, serve_metrics
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.tools.client import OrderClient
from ordersaga.tools.verify import Check, verify


@dataclass(frozen=True)
class Scenario:
    title: str
    user: int
    product: int
    quantity: int
    expected: str


# The original demo's stories, on its sample data (stock 1→5, 2→5, 3→3; balances
# 1→100, 2→100, 3→200; prices 1→20, 2→30, 3→50), placed one after the other.
SCENARIOS = (
    Scenario("a successful order", 1, 1, 1, "ORDER_COMPLETED"),
    Scenario("product 3, first of its 3 units", 3, 3, 1, "ORDER_COMPLETED"),
    Scenario("product 3, second unit", 3, 3, 1, "ORDER_COMPLETED"),
    Scenario("product 3, last unit", 3, 3, 1, "ORDER_COMPLETED"),
    Scenario("product 3, out of stock", 2, 3, 1, "ORDER_CANCELLED"),
    Scenario("user 1 cannot afford 90 with 80 left", 1, 2, 3, "ORDER_CANCELLED"),
)


@dataclass(frozen=True)
class Played:
    """A scenario and the order it ended with."""

    scenario: Scenario
    order: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.order["status"] == self.scenario.expected)


@dataclass(frozen=True)
class DemoResult:
    played: Sequence[Played]
    orders: list[dict[str, Any]]
    """Up to 500 of the orders, newest first."""
    total: int
    checks: Sequence[Check]

    @property
    def ok(self) -> bool:
        """Every scenario ended as expected and every invariant held."""
        return all(p.ok for p in self.played) and all(c.ok for c in self.checks)


ShowPlayed = Callable[[Sequence[Played]], None]
ShowProgress = Callable[[str, int, int], None]
"""A stage's description, how far it is and its total (called again as it goes)."""
ShowNote = Callable[[str], None]
"""One line about the run (where its metrics are)."""


async def run_demo(
    data_dir: Path,
    random_orders: int = 300,
    seed: int | None = None,
    *,
    show_played: ShowPlayed,
    show_progress: ShowProgress,
    show_note: ShowNote = lambda _: None,
    settings: Settings | None = None,
) -> DemoResult:
    """Play the scenarios, place ``random_orders`` random ones, wait for all, check.

    While it runs, every service's metrics are on ``settings``' metrics port (for
    ``ordersaga top --embedded``), unless it is 0 or taken: a demo needs no port."""
    settings = settings or Settings()
    async with EmbeddedSystem(data_dir, settings) as system:
        exposed = _serve_metrics(system, settings, show_note)
        try:
            return await _play(system, random_orders, seed, show_played, show_progress)
        finally:
            if exposed is not None:
                exposed.close()


def _serve_metrics(
    system: EmbeddedSystem, settings: Settings, show_note: ShowNote
) -> MetricsServer | None:
    if not settings.metrics_port:
        return None
    try:
        exposed = serve_metrics(
            system.metrics.registry, settings.metrics_host, settings.metrics_port
        )
    except MetricsPortInUse as error:
        show_note(f"no metrics port: {error}")
        return None
    show_note(f"metrics on {exposed.url} (`ordersaga top --embedded`)")
    return exposed


async def _play(
    system: EmbeddedSystem,
    random_orders: int,
    seed: int | None,
    show_played: ShowPlayed,
    show_progress: ShowProgress,
) -> DemoResult:
    transport = httpx.ASGITransport(app=system.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordersaga") as http:
        client = OrderClient(http, system.tokens)
        played = await _scenarios(client)
        show_played(played)
        rng = random.Random(seed)
        await _random_orders(client, system, random_orders, rng, show_progress)
        outcomes = await client.list(limit=500)
    checks = await verify(system.engines)
    return DemoResult(played, outcomes["items"], outcomes["total"], checks)


async def _scenarios(client: OrderClient) -> list[Played]:
    played = []
    for s in SCENARIOS:
        placed = await client.place(s.user, s.product, s.quantity)
        played.append(Played(s, await client.wait(placed["orderID"])))
    return played


async def _random_orders(
    client: OrderClient,
    system: EmbeddedSystem,
    count: int,
    rng: random.Random,
    show: ShowProgress,
) -> None:
    in_flight = asyncio.Semaphore(32)
    placing = f"placing {count} random orders"
    placed = 0

    async def place() -> None:
        nonlocal placed
        async with in_flight:
            await client.place(rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3))
            placed += 1
            show(placing, placed, count)

    show(placing, 0, count)
    await asyncio.gather(*(place() for _ in range(count)))
    finishing = "waiting for every saga to finish"
    while pending := await system.pending_orders():
        show(finishing, count - min(pending, count), count)
        await asyncio.sleep(0.05)
    show(finishing, count, count)


def reason_kind(reason: str) -> str:
    """The kind of a reason without its figures: "stock: insufficient stock for product 3"."""
    return ":".join(reason.split(":")[:2])
