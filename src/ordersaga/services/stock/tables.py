"""The stock service's tables: stock on hand, one reservation per order, outbox, inbox."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
)

from ordersaga.db.naming import NAMING_CONVENTION
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.outbox import outbox_table
from ordersaga.services.stock.rules import ReservationStatus

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_STATUSES = ", ".join(f"'{s.value}'" for s in ReservationStatus)

stock = Table(
    "stock",
    metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("quantity", Integer, nullable=False),
    # What was seeded: the conservation check compares against it.
    Column("initial_quantity", Integer, nullable=False),
    # Enforced by the database, not only by the conditional update.
    CheckConstraint("quantity >= 0", name="ck_stock_quantity_not_negative"),
    CheckConstraint("initial_quantity >= 0", name="ck_stock_initial_quantity_not_negative"),
)

reservations = Table(
    "reservations",
    metadata,
    # The primary key is what makes a reservation happen at most once per order.
    Column("order_id", String(36), primary_key=True),
    Column("product_id", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("reason", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("quantity >= 0", name="ck_reservations_quantity_not_negative"),
    CheckConstraint(f"status IN ({_STATUSES})", name="ck_reservations_status"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
