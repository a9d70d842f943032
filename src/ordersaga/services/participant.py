"""The one handler shape of a participant (stock, payment): a batch of its commands.

A participant keeps one row per order (a reservation, a payment) and debits a holder's
row (a product's stock, a user's balance). Its handler, whatever the participant:

1. locks the holders' rows of the whole batch in one read, in the order of their ids,
   so two batches wait for each other instead of deadlocking;
2. reads the orders' existing rows in one statement;
3. applies each command's rule in record order against what is known in memory, so a
   later command of an order sees what an earlier one did (a reserve then its cancel, a
   duplicate); a rule still debits and credits with its own conditional updates and
   answers through the command's context;
4. writes the new order rows, tombstones included, with one insert at the end.

The effect is that of the rules applied to each command in turn, in one transaction; a
lone record is a batch of one. Where no lock is taken (SQLite, an unknown holder) the
order row's primary key still decides: the loser is rolled back, debit included, and
answers from the winner's row when retried.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.driver import Driver, driver, insert_sql
from ordersaga.messaging.handler import BatchHandler, BatchItem, HandlerContext

R = TypeVar("R")


@dataclass(slots=True)
class Known(Generic[R]):
    """What a batch knows while it works: the holders that exist, and order rows stored
    or new."""

    conn: AsyncConnection
    db: Driver | None
    """The driver route of ``conn``'s transaction on PostgreSQL and SQLite
    (:mod:`ordersaga.db.driver`); None on MariaDB."""
    holders: set[int]
    """The holders of the batch whose rows exist (locked, where the database can)."""
    stored: dict[str, R]
    new: dict[str, R] = field(default_factory=dict)

    def find(self, order_id: str) -> R | None:
        """The order's row as the commands before this one left it."""
        return self.new.get(order_id) or self.stored.get(order_id)

    def is_new(self, order_id: str) -> bool:
        """Whether the order's row is one this batch makes (not written yet)."""
        return order_id in self.new

    def put(self, order_id: str, row: R) -> None:
        """The order's row is now ``row``: a new one (written at the end) or a stored one
        (already changed in the database by the rule)."""
        if order_id in self.stored and order_id not in self.new:
            self.stored[order_id] = row
        else:
            self.new[order_id] = row


Rule = Callable[[Known[R], HandlerContext, Any], Awaitable[None]]
"""Decides one command against what is known, changes the database, answers."""


@dataclass(frozen=True)
class Ledger(Generic[R]):
    """A participant's tables and rules, as its batch handler uses them."""

    holder: Column[int]
    """The key of the rows a command debits (``stock.product_id``, ``balances.user_id``)."""
    records: Table
    """One row per order, keyed by ``order_id``, never deleted."""
    holder_of: Callable[[Any], int]
    """The holder a command debits or credits."""
    read: Callable[[Mapping[str, Any]], R]
    """An order row as read from ``records`` (its columns by name)."""
    write: Callable[[R], dict[str, Any]]
    """The columns of a new order row, but its order id and timestamps."""
    rules: Mapping[type, Rule[R]]
    """The rule of each command model."""


def batch_handler(ledger: Ledger[R]) -> BatchHandler:
    """The handler of ``ledger``'s commands."""
    # Built once and run with bound parameters: building a statement costs more than running it.
    lock = (
        select(ledger.holder)
        .where(ledger.holder.in_(bindparam("wanted_holders", expanding=True)))
        .order_by(ledger.holder)
        .with_for_update()
    )
    records = ledger.records
    find = select(records).where(records.c.order_id.in_(bindparam("wanted_orders", expanding=True)))
    record = insert(records)
    # The same as text for the driver route (ids as one array).
    holder, table = ledger.holder.name, ledger.holder.table.name
    db_lock = f"SELECT {holder} FROM {table} WHERE {holder} = ANY($1) ORDER BY {holder} FOR UPDATE"
    columns = ", ".join(c.name for c in records.c)
    db_find = f"SELECT {columns} FROM {records.name} WHERE order_id = ANY($1)"

    async def read(
        conn: AsyncConnection, db: Driver | None, holders: list[int], orders: list[str]
    ) -> tuple[set[int], Sequence[Mapping[Any, Any]]]:
        if db is not None:
            locked = await db.fetch(db_lock, holders)
            return {r[0] for r in locked}, await db.fetch_rows(db_find, records, orders)
        locked_ids = (await conn.execute(lock, {"wanted_holders": holders})).scalars()
        found = await conn.execute(find, {"wanted_orders": orders})
        return set(locked_ids), [row._mapping for row in found]

    async def handle(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
        commands = [item.message for item in items]
        holders = sorted({ledger.holder_of(c) for c in commands})
        orders = sorted({str(c.orderID) for c in commands})
        db = await driver(conn)
        locked, found = await read(conn, db, holders, orders)
        known = Known[R](conn, db, locked, {r["order_id"]: ledger.read(r) for r in found})
        for item in items:
            with item.context.logged():
                await _rule_of(ledger, item.message)(known, item.context, item.message)
        if known.new:
            now = datetime.now(UTC)
            # In the order of their keys, as the locks were taken.
            rows = [
                {"order_id": order_id, **ledger.write(r), "created_at": now, "updated_at": now}
                for order_id, r in sorted(known.new.items())
            ]
            if db is None:
                await conn.execute(record, rows)
            else:
                statement = insert_sql(records, rows[0])
                types = [records.c[name].type for name in rows[0]]
                values = [tuple(map(db.bind, types, r.values())) for r in rows]
                await db.execute_many(statement, values)

    return handle


def _rule_of(ledger: Ledger[R], command: object) -> Rule[R]:
    for model in type(command).__mro__:
        if model in ledger.rules:
            return ledger.rules[model]
    raise TypeError(f"no rule for {type(command).__name__}")
