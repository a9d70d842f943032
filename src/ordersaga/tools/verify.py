"""The design's invariants, checked against the services' databases.

Each check reads only what the services own and says, with figures, whether it holds.
They are meant for a quiet system: while sagas are in flight, 1 fails by definition.
:func:`one_run_check` is no invariant of the design but of the set-up: it tells data
left from an earlier run (databases of two runs side by side), the usual cause of the
others failing on a fresh start.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.services.orchestrator.tables import saga_instances
from ordersaga.services.order.tables import orders
from ordersaga.services.payment.tables import balances, payments
from ordersaga.services.stock.tables import reservations, stock

COMPLETED = "ORDER_COMPLETED"
CANCELLED = "ORDER_CANCELLED"


@dataclass(frozen=True)
class Check:
    number: int
    name: str
    ok: bool
    figures: str


@dataclass(frozen=True)
class Snapshot:
    """Everything the checks read, fetched once."""

    orders: list[Row[Any]]
    sagas: list[Row[Any]]
    stock: list[Row[Any]]
    reservations: list[Row[Any]]
    balances: list[Row[Any]]
    payments: list[Row[Any]]


async def _rows(engine: AsyncEngine, table: Table) -> list[Row[Any]]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def snapshot(engines: Mapping[str, AsyncEngine]) -> Snapshot:
    return Snapshot(
        orders=await _rows(engines["order"], orders),
        sagas=await _rows(engines["orchestrator"], saga_instances),
        stock=await _rows(engines["stock"], stock),
        reservations=await _rows(engines["stock"], reservations),
        balances=await _rows(engines["payment"], balances),
        payments=await _rows(engines["payment"], payments),
    )


async def verify(engines: Mapping[str, AsyncEngine], *, one_run: bool = False) -> list[Check]:
    """Check every invariant of the design against the databases behind ``engines``;
    with ``one_run``, then whether they hold one run's data (check 7), which names the
    cause when databases of a fresh start sit beside an earlier run's."""
    s = await snapshot(engines)
    return check_all(s) + ([one_run_check(s)] if one_run else [])


def check_all(s: Snapshot) -> list[Check]:
    return [
        _all_terminal(s),
        _stock_conserved(s),
        _money_conserved(s),
        _nothing_negative(s),
        _one_charge_one_reservation(s),
        _effects_once(s),
    ]


def _all_terminal(s: Snapshot) -> Check:
    """Orders final, and sagas too: a saga is COMPLETED or CANCELLED only once the order
    service acknowledged its outcome, so one still NOTIFYING (or PARKED) is open."""
    statuses = Counter(o.status for o in s.orders)
    open_by_status = Counter(
        g.status for g in s.sagas if g.status not in ("COMPLETED", "CANCELLED")
    )
    open_sagas = sum(open_by_status.values())
    pending = statuses.get("ORDER_CREATED", 0)
    figures = (
        f"{len(s.orders)} orders: {statuses.get(COMPLETED, 0)} completed, "
        f"{statuses.get(CANCELLED, 0)} cancelled, {pending} pending; {open_sagas} sagas open"
    )
    if open_sagas:
        figures += " (" + ", ".join(f"{n} {st}" for st, n in sorted(open_by_status.items())) + ")"
    return Check(
        1, "every order ends COMPLETED or CANCELLED", not pending and not open_sagas, figures
    )


def _completed(s: Snapshot) -> dict[str, Row[Any]]:
    return {str(o.id): o for o in s.orders if o.status == COMPLETED}


def _stock_conserved(s: Snapshot) -> Check:
    completed = _completed(s)
    held: dict[int, int] = defaultdict(int)
    for o in completed.values():
        held[o.product_id] += o.quantity
    wrong = [
        f"product {p.product_id}: {p.initial_quantity} != {p.quantity} + {held[p.product_id]}"
        for p in s.stock
        if p.initial_quantity != p.quantity + held[p.product_id]
    ]
    initial = sum(p.initial_quantity for p in s.stock)
    on_hand = sum(p.quantity for p in s.stock)
    figures = f"initial {initial} = on hand {on_hand} + held by completed {sum(held.values())}"
    return Check(2, "stock is conserved", not wrong, "; ".join(wrong) or figures)


def _money_conserved(s: Snapshot) -> Check:
    charged: dict[int, Decimal] = defaultdict(Decimal)
    for o in _completed(s).values():
        charged[o.user_id] += o.amount
    wrong = [
        f"user {b.user_id}: {b.initial_balance} != {b.balance} + {charged[b.user_id]}"
        for b in s.balances
        if b.initial_balance != b.balance + charged[b.user_id]
    ]
    initial = sum((b.initial_balance for b in s.balances), Decimal(0))
    balance = sum((b.balance for b in s.balances), Decimal(0))
    figures = (
        f"initial {initial} = balances {balance} + charged for completed "
        f"{sum(charged.values(), Decimal(0))}"
    )
    return Check(3, "money is conserved", not wrong, "; ".join(wrong) or figures)


def _nothing_negative(s: Snapshot) -> Check:
    low_stock = min((p.quantity for p in s.stock), default=0)
    low_balance = min((b.balance for b in s.balances), default=Decimal(0))
    ok = low_stock >= 0 and low_balance >= 0
    return Check(
        4, "nothing goes negative", ok, f"lowest stock {low_stock}, lowest balance {low_balance}"
    )


def _one_charge_one_reservation(s: Snapshot) -> Check:
    reserved = {str(r.order_id): r for r in s.reservations if r.status == "RESERVED"}
    charged = {str(p.order_id): p for p in s.payments if p.status == "APPROVED"}
    wrong: list[str] = []
    for o in s.orders:
        r, p = reserved.get(str(o.id)), charged.get(str(o.id))
        if o.status == COMPLETED:
            if r is None or (r.quantity, r.product_id) != (o.quantity, o.product_id):
                wrong.append(f"completed order {o.id} has no matching reservation")
            if p is None or p.amount != o.amount:
                wrong.append(f"completed order {o.id} has no matching charge")
        elif o.status == CANCELLED and (r is not None or p is not None):
            held = "reservation" if r is not None else "charge"
            wrong.append(f"cancelled order {o.id} still holds a {held}")
    done = sum(1 for o in s.orders if o.status in (COMPLETED, CANCELLED))
    figures = (
        f"{done} finished orders checked against {len(s.reservations)} reservations "
        f"and {len(s.payments)} payments"
    )
    return Check(
        5,
        "a COMPLETED order has one charge and one reservation; a CANCELLED none",
        not wrong,
        "; ".join(wrong[:5]) or figures,
    )


def _effects_once(s: Snapshot) -> Check:
    reserved = sum(r.quantity for r in s.reservations if r.status == "RESERVED")
    taken = sum(p.initial_quantity - p.quantity for p in s.stock)
    charged = sum((p.amount for p in s.payments if p.status == "APPROVED"), Decimal(0))
    debited = sum((b.initial_balance - b.balance for b in s.balances), Decimal(0))
    ok = reserved == taken and charged == debited
    figures = (
        f"stock taken {taken} = held by reservations {reserved}; "
        f"money debited {debited} = held by payments {charged}"
    )
    return Check(6, "each message's effect is applied once", ok, figures)


EARLIER_RUN = "the databases hold data from an earlier run: `make infra-reset` starts from empty"


def one_run_check(s: Snapshot) -> Check:
    """Every saga, reservation and payment belongs to an order the order service has.

    Each of them is created only for an order that exists, and none is pruned while its
    order is kept (orders are kept for good), so one naming an unknown order means the
    databases do not belong to one run: the order database was emptied or replaced while
    the others kept an earlier run's data (or the other way round).
    """
    known = {str(o.id) for o in s.orders}
    strangers = {
        "sagas": sum(1 for g in s.sagas if str(g.saga_id) not in known),
        "reservations": sum(1 for r in s.reservations if str(r.order_id) not in known),
        "payments": sum(1 for p in s.payments if str(p.order_id) not in known),
    }
    found = ", ".join(f"{n} {what}" for what, n in strangers.items() if n)
    if not found:
        figures = (
            f"{len(s.sagas)} sagas, {len(s.reservations)} reservations and "
            f"{len(s.payments)} payments, each of a known order"
        )
        return Check(7, "the databases hold one run's data", True, figures)
    figures = f"{found} of orders the order database does not have; {EARLIER_RUN}"
    return Check(7, "the databases hold one run's data", False, figures)
