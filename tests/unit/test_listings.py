"""Listings at 80 columns: statuses and ids whole, no line wider, long text wrapped under
its item; fields left out, the least important first, when the terminal is narrow."""

import io
from uuid import uuid4

from rich.console import Console

from ordersaga.cli.bench_view import CEILING_NOTE, summary_table
from ordersaga.cli.demo import scenarios_listing
from ordersaga.cli.listing import Field, Item, listing
from ordersaga.cli.tables import orders_listing
from ordersaga.tools.bench.results import Outcomes, RunResult
from ordersaga.tools.demo import SCENARIOS, Played


def rendered(renderable: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def an_order(status: str, reason: str | None) -> dict[str, object]:
    return {
        "orderID": str(uuid4()),
        "userID": 12345,
        "productID": 678,
        "quantity": 100,
        "amount": 123456.5,
        "status": status,
        "reason": reason,
    }


def test_orders_at_80_columns_keep_ids_and_statuses_whole_and_wrap_the_reason() -> None:
    reason = "stock: insufficient stock for product 678: 4 on hand, 100 requested; " * 2
    orders = [an_order("ORDER_CANCELLED", reason), an_order("ORDER_COMPLETED", None)]

    shown = rendered(orders_listing(orders, 80), 80)

    print(shown)
    assert max(len(line) for line in shown.splitlines()) <= 80
    for order in orders:
        [line] = [x for x in shown.splitlines() if str(order["orderID"]) in x]
        assert str(order["status"]) in line and "123456.50" in line
    assert " ".join(reason.split()) in " ".join(shown.split())
    assert len(shown.splitlines()) <= 2 + 2 + 2  # title, header, two orders, the reason


def test_the_least_important_fields_go_first_and_an_id_is_never_cut() -> None:
    fields = (Field("id", keep=9), Field("b", keep=1), Field("c", keep=5))
    item = Item(["x" * 36, "b" * 20, "c" * 20])

    assert "b" * 20 in rendered(listing("t", fields, [item], 80), 80)
    narrow = rendered(listing("t", fields, [item], 60), 60)
    assert "b" * 20 not in narrow and "c" * 20 in narrow
    narrower = rendered(listing("t", fields, [item], 40), 40)
    assert "x" * 36 in narrower and "c" * 20 not in narrower


def test_the_demo_scenarios_at_80_columns() -> None:
    played = [
        Played(
            s,
            {
                "status": s.expected,
                "amount": "50.00",
                "reason": "payment: insufficient funds: balance 80.00, amount 90.00"
                if "CANCELLED" in s.expected
                else None,
            },
        )
        for s in SCENARIOS
    ]

    shown = rendered(scenarios_listing(played, 80), 80)

    print(shown)
    assert max(len(line) for line in shown.splitlines()) <= 80
    for s in SCENARIOS:
        assert s.title in " ".join(shown.split())
    assert shown.count("ORDER_COMPLETED") + shown.count("ORDER_CANCELLED") == len(SCENARIOS)


def test_of_ceiling_is_shown_and_explained_only_with_a_ceiling() -> None:
    def run(name: str, system: str, throughput: float) -> RunResult:
        return RunResult(
            name=name,
            system=system,
            load={"mode": "max", "rate": None},
            window={"start": 0.0, "end": 10.0, "length_s": 10.0},
            placed=120,
            finished=120,
            finished_in_window=100,
            drained=True,
            throughput=throughput,
            latency_ms=None,
            outcomes=Outcomes(completed=120, cancelled=0, unfinished=0, top_reasons=[]),
            cpu={},
            machine={},
        )

    ceiling, system = run("null-chain", "null-chain", 400.0), run("max", "real", 100.0)
    with_ceiling = rendered(summary_table([ceiling, system], 400.0), 200)
    without = rendered(summary_table([system], None), 200)

    assert "of ceiling" in with_ceiling and "25%" in with_ceiling
    assert CEILING_NOTE in " ".join(with_ceiling.split())
    assert "of ceiling" not in without
    assert "120 / 120" in without and "(warm-up included)" in without and " 100 " in without
