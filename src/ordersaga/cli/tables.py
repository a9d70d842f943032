"""Rendering results for a person: invariant checks and order tables."""

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from rich.table import Table

from ordersaga.tools.verify import Check


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table(title="Invariants", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("invariant")
    table.add_column("holds")
    table.add_column("figures")
    for check in checks:
        mark = "[green]yes[/]" if check.ok else "[bold red]NO[/]"
        table.add_row(str(check.number), check.name, mark, check.figures)
    return table


def orders_table(orders: Iterable[dict[str, Any]], title: str = "Orders") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("orderID", "user", "product", "qty", "amount", "status", "reason"):
        table.add_column(column)
    for o in orders:
        table.add_row(
            str(o["orderID"]),
            str(o["userID"]),
            str(o["productID"]),
            str(o["quantity"]),
            money_text(o["amount"]),
            status_text(o["status"]),
            o.get("reason") or "",
        )
    return table


def money_text(amount: object) -> str:
    """An amount as the API returns it (a JSON number), shown with its two decimals."""
    return f"{Decimal(str(amount)):.2f}"


def status_text(status: str) -> str:
    colour = {"ORDER_COMPLETED": "green", "ORDER_CANCELLED": "yellow"}.get(status, "cyan")
    return f"[{colour}]{status}[/]"
