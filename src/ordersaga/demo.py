"""``ordersaga demo``: the original demo's scenarios and a few hundred random orders,
on a fresh embedded system, then every invariant checked."""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from ordersaga.client import OrderClient
from ordersaga.config import Settings
from ordersaga.report import checks_table, money_text, status_text
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.verify import verify


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


async def run_demo(
    console: Console, data_dir: Path, random_orders: int = 300, seed: int | None = None
) -> bool:
    """Run the demo; ``True`` when every scenario ended as expected and every invariant held."""
    async with EmbeddedSystem(data_dir, Settings()) as system:
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ordersaga") as http:
            client = OrderClient(http)
            scenarios_ok = await _scenarios(console, client)
            await _random_orders(console, client, system, random_orders, random.Random(seed))
            outcomes = await client.list(limit=500)
        checks = await verify(system.engines)
    console.print(_outcomes_table(outcomes["items"], outcomes["total"]))
    console.print(checks_table(checks))
    ok = scenarios_ok and all(c.ok for c in checks)
    console.print("[bold green]All invariants hold.[/]" if ok else "[bold red]Demo failed.[/]")
    return ok


async def _scenarios(console: Console, client: OrderClient) -> bool:
    table = Table(title="The original demo's scenarios", title_justify="left")
    for column in (
        "scenario",
        "user",
        "product",
        "qty",
        "amount",
        "status",
        "reason",
        "as expected",
    ):
        table.add_column(column)
    all_ok = True
    for s in SCENARIOS:
        placed = await client.place(s.user, s.product, s.quantity)
        order = await client.wait(placed["orderID"])
        ok = order["status"] == s.expected
        all_ok &= ok
        table.add_row(
            s.title,
            str(s.user),
            str(s.product),
            str(s.quantity),
            money_text(order["amount"]),
            status_text(order["status"]),
            order.get("reason") or "",
            "[green]yes[/]" if ok else "[bold red]NO[/]",
        )
    console.print(table)
    return all_ok


async def _random_orders(
    console: Console, client: OrderClient, system: EmbeddedSystem, count: int, rng: random.Random
) -> None:
    in_flight = asyncio.Semaphore(32)

    async def place(progress: Progress, task: TaskID) -> None:
        async with in_flight:
            await client.place(rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3))
            progress.advance(task)

    with Progress(console=console, transient=False) as progress:
        placing = progress.add_task(f"placing {count} random orders", total=count)
        await asyncio.gather(*(place(progress, placing) for _ in range(count)))
        finishing = progress.add_task("waiting for every saga to finish", total=count)
        while pending := await system.pending_orders():
            progress.update(finishing, completed=count - min(pending, count))
            await asyncio.sleep(0.05)
        progress.update(finishing, completed=count)


def _kind(reason: str) -> str:
    """The kind of a reason without its figures: "stock: insufficient stock for product 3"."""
    return ":".join(reason.split(":")[:2])


def _outcomes_table(orders: list[dict[str, object]], total: int) -> Table:
    counts = Counter((str(o["status"]), _kind(str(o.get("reason") or ""))) for o in orders)
    table = Table(title=f"Outcomes of all {total} orders", title_justify="left")
    table.add_column("status")
    table.add_column("reason")
    table.add_column("orders", justify="right")
    for (status, reason), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(status_text(status), reason, str(n))
    return table
