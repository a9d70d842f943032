"""The chaos run's outcome mix, and what makes a run count as having exercised every path."""

import random
from collections import Counter

from ordersaga.tools.bench.data import CHAOS, CHAOS_BROKE, CHAOS_SOLD_OUT, chaos_order
from ordersaga.tools.chaos import ChaosReport, outcome_class
from ordersaga.tools.verify import Check


def test_orders_are_classed_by_status_and_by_who_refused_them() -> None:
    assert outcome_class("ORDER_COMPLETED", None) == "completed"
    assert outcome_class("ORDER_CANCELLED", "stock: product 3: 0 on hand") == "refused by stock"
    assert outcome_class("ORDER_CANCELLED", "payment: insufficient funds") == "refused by payment"
    assert (
        outcome_class("ORDER_CANCELLED", "payment did not answer within 30s")
        == "cancelled otherwise"
    )
    assert outcome_class("ORDER_CREATED", None) == "open"


def test_the_chaos_orders_mix_completions_with_both_refusals() -> None:
    rng = random.Random(1)
    bodies = [chaos_order(rng) for _ in range(2000)]
    sold_out = sum(b["productID"] == CHAOS_SOLD_OUT for b in bodies)
    broke = sum(b["userID"] in CHAOS_BROKE for b in bodies)
    assert 150 < sold_out < 250 and 150 < broke < 250
    assert all(b["productID"] in CHAOS.products and b["userID"] in CHAOS.balances for b in bodies)
    assert CHAOS.products[CHAOS_SOLD_OUT][1] == 0
    assert all(CHAOS.balances[u] == 0 for u in CHAOS_BROKE)


def report(**mix: int) -> ChaosReport:
    passed = [Check(1, "every order ends", True, "")]
    result = ChaosReport(placed=10, accepted=10, checks=passed)
    result.mix = Counter({kind.replace("_", " "): n for kind, n in mix.items()})
    return result


def test_a_run_that_did_not_exercise_every_path_fails() -> None:
    assert report(completed=8, refused_by_payment=1, refused_by_stock=1).ok
    assert not report(completed=2, refused_by_payment=1, refused_by_stock=7).ok
    assert not report(completed=9, refused_by_stock=1).ok
