"""The payment service's tables: balances, one payment per order, outbox, inbox."""

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, MetaData, String, Table

from ordersaga.db.naming import NAMING_CONVENTION
from ordersaga.db.types import Money
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.outbox import outbox_table
from ordersaga.services.payment.rules import ChargeStatus

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_STATUSES = ", ".join(f"'{s.value}'" for s in ChargeStatus)

# Money is whole cents on SQLite and NUMERIC(12,2) elsewhere: ">= 0" means the same in both.
balances = Table(
    "balances",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=False),
    Column("balance", Money, nullable=False),
    # What was seeded: the conservation check compares against it.
    Column("initial_balance", Money, nullable=False),
    # Enforced by the database, not only by the conditional update.
    CheckConstraint("balance >= 0", name="ck_balances_balance_not_negative"),
    CheckConstraint("initial_balance >= 0", name="ck_balances_initial_balance_not_negative"),
)

payments = Table(
    "payments",
    metadata,
    # The primary key is what makes a charge happen at most once per order.
    Column("order_id", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("amount", Money, nullable=False),
    Column("status", String(24), nullable=False),
    Column("reason", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount >= 0", name="ck_payments_amount_not_negative"),
    CheckConstraint(f"status IN ({_STATUSES})", name="ck_payments_status"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
