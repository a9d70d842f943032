"""The order service's tables: the product catalog, orders, outbox and inbox."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects import mysql

from ordersaga.contracts.statuses import OrderStatus
from ordersaga.db.naming import NAMING_CONVENTION
from ordersaga.db.timestamps import UtcDateTime
from ordersaga.db.types import Money
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.outbox import outbox_table

metadata = MetaData(naming_convention=NAMING_CONVENTION)

EXACT_TEXT_255 = String(255).with_variant(
    mysql.VARCHAR(255, collation="utf8mb4_nopad_bin"), "mysql", "mariadb"
)

_STATUSES = ", ".join(f"'{s.value}'" for s in OrderStatus)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("price", Money, nullable=False),
    CheckConstraint("price >= 0", name="ck_products_price_not_negative"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("product_id", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", Money, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(255), nullable=True),
    # Unique, so two requests racing with one key cannot both create an order. Compared
    # byte for byte everywhere: MariaDB's default collation would make "Key-A", "key-a"
    # and "key-a " one key (NO PAD: trailing spaces count too).
    Column("idempotency_key", EXACT_TEXT_255, nullable=True, unique=True),
    # Microseconds matter: updated_at - created_at is how long the saga took.
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # When order-created was last published again for an order left ORDER_CREATED; kept
    # apart from updated_at, which says when the saga ended.
    Column("reconciled_at", UtcDateTime, nullable=True),
    CheckConstraint("quantity > 0", name="ck_orders_quantity_positive"),
    CheckConstraint("amount >= 0", name="ck_orders_amount_not_negative"),
    CheckConstraint(f"status IN ({_STATUSES})", name="ck_orders_status"),
    Index("ix_orders_user_id", "user_id"),
    Index("ix_orders_status", "status"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
