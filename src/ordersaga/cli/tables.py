"""Rendering results for a person: invariant checks and order listings."""

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from rich.console import RenderableType
from rich.table import Table

from ordersaga.cli.listing import Field, Item, listing
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


ORDER_FIELDS = (
    Field("orderID", keep=9),
    Field("status", keep=8),
    Field("amount", keep=7, justify="right"),
    Field("qty", keep=4, justify="right"),
    Field("product", keep=3, justify="right"),
    Field("user", keep=2, justify="right"),
)


def orders_listing(
    orders: Iterable[dict[str, Any]], width: int, title: str = "Orders"
) -> RenderableType:
    """The orders, one line each, a cancelled one's reason under it."""
    items = [
        Item(
            [
                str(o["orderID"]),
                status_text(o["status"]),
                money_text(o["amount"]),
                str(o["quantity"]),
                str(o["productID"]),
                str(o["userID"]),
            ],
            note=o.get("reason") or "",
        )
        for o in orders
    ]
    return listing(title, ORDER_FIELDS, items, width)


def money_text(amount: object) -> str:
    """An amount as the API returns it (a JSON number), shown with its two decimals."""
    return f"{Decimal(str(amount)):.2f}"


def status_text(status: str) -> str:
    colour = {"ORDER_COMPLETED": "green", "ORDER_CANCELLED": "yellow"}.get(status, "cyan")
    return f"[{colour}]{status}[/]"
