"""``ordersaga demo``: the demo's scenarios, its progress, outcomes and invariants."""

import asyncio
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.progress import Progress, TaskID
from rich.table import Table

from ordersaga.cli.listing import Field, Item, listing
from ordersaga.cli.tables import checks_table, money_text, status_text
from ordersaga.tools.demo import Played, reason_kind, run_demo

console = Console()


def demo_command(
    orders: Annotated[int, typer.Option(help="How many random orders to place.")] = 300,
    seed: Annotated[int | None, typer.Option(help="Seed for the random orders.")] = None,
) -> None:
    """Run the original demo's scenarios and random orders on a fresh embedded system."""
    with tempfile.TemporaryDirectory(prefix="ordersaga-demo-") as data_dir:
        ok = asyncio.run(_demo(Path(data_dir), orders, seed))
    raise typer.Exit(0 if ok else 1)


async def _demo(data_dir: Path, orders: int, seed: int | None) -> bool:
    stages = _Stages()
    try:
        result = await run_demo(
            data_dir,
            orders,
            seed,
            show_played=lambda played: console.print(scenarios_listing(played, console.width)),
            show_progress=stages.show,
            show_note=lambda note: console.print(f"[dim]{note}[/]"),
        )
    finally:
        stages.close()
    console.print(outcomes_table(result.orders, result.total))
    console.print(checks_table(result.checks))
    ok = result.ok
    console.print("[bold green]All invariants hold.[/]" if ok else "[bold red]Demo failed.[/]")
    return ok


class _Stages:
    """One progress bar per stage of the demo, drawn as they go."""

    def __init__(self) -> None:
        self._progress = Progress(console=console, transient=False)
        self._tasks: dict[str, TaskID] = {}

    def show(self, stage: str, completed: int, total: int) -> None:
        if not self._tasks:
            self._progress.start()
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(self._tasks[stage], completed=completed)

    def close(self) -> None:
        if self._tasks:
            self._progress.stop()


SCENARIO_FIELDS = (
    Field("as expected", keep=9),
    Field("status", keep=8),
    Field("amount", keep=7, justify="right"),
    Field("qty", keep=4, justify="right"),
    Field("product", keep=5, justify="right"),
    Field("user", keep=6, justify="right"),
)


def scenarios_listing(played: Sequence[Played], width: int) -> RenderableType:
    """Each scenario's outcome on a line, what it plays (and why it was cancelled) under."""
    items = []
    for p in played:
        s, order = p.scenario, p.order
        reason = order.get("reason")
        items.append(
            Item(
                [
                    "[green]yes[/]" if p.ok else "[bold red]NO[/]",
                    status_text(order["status"]),
                    money_text(order["amount"]),
                    str(s.quantity),
                    str(s.product),
                    str(s.user),
                ],
                note=f"{s.title}: {reason}" if reason else s.title,
            )
        )
    return listing("The original demo's scenarios", SCENARIO_FIELDS, items, width)


def outcomes_table(orders: list[dict[str, Any]], total: int) -> Table:
    counts = Counter((str(o["status"]), reason_kind(str(o.get("reason") or ""))) for o in orders)
    table = Table(title=f"Outcomes of all {total} orders", title_justify="left")
    table.add_column("status", no_wrap=True)
    table.add_column("reason")
    table.add_column("orders", justify="right")
    for (status, reason), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(status_text(status), reason, str(n))
    return table
