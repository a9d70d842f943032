"""The initial schema of the order service: catalog, orders, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column types as they are at this revision, spelled out rather than imported, so
# that changing the application's types can never change what this revision creates.

# Money: NUMERIC(12,2); whole cents in an INTEGER on SQLite, which has no exact decimal.
MONEY = sa.Numeric(12, 2).with_variant(sa.Integer(), "sqlite")
# A UTC timestamp; DATETIME(6) on MariaDB/MySQL, which would otherwise drop microseconds.
UTC_DATETIME = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.CheckConstraint("price >= 0", name="ck_products_price_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_orders_quantity_positive"),
        sa.CheckConstraint("amount >= 0", name="ck_orders_amount_not_negative"),
        sa.CheckConstraint(
            "status IN ('ORDER_CREATED', 'ORDER_COMPLETED', 'ORDER_CANCELLED')",
            name="ck_orders_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("idempotency_key", name="uq_orders_idempotency_key"),
    )
    op.create_index("ix_orders_user_id", "orders", ["user_id"])
    op.create_index("ix_orders_status", "orders", ["status"])
    create_messaging_tables()


def downgrade() -> None:
    op.drop_table("processed_messages")
    op.drop_table("outbox")
    op.drop_table("orders")
    op.drop_table("products")


def create_messaging_tables() -> None:
    """The transactional outbox, and the inbox of handled message ids."""
    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("message_key", sa.String(255), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_table(
        "processed_messages",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("processed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_processed_messages"),
    )
