"""The initial schema of the stock service: stock on hand, reservations, outbox and inbox.

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

# A UTC timestamp; DATETIME(6) on MariaDB/MySQL, which would otherwise drop microseconds.
UTC_DATETIME = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("initial_quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name="ck_stock_quantity_not_negative"),
        sa.CheckConstraint("initial_quantity >= 0", name="ck_stock_initial_quantity_not_negative"),
        sa.PrimaryKeyConstraint("product_id", name="pk_stock"),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity >= 0", name="ck_reservations_quantity_not_negative"),
        sa.CheckConstraint(
            "status IN ('RESERVED', 'REJECTED', 'RELEASED', 'CANCELLED')",
            name="ck_reservations_status",
        ),
        sa.PrimaryKeyConstraint("order_id", name="pk_reservations"),
    )
    create_messaging_tables()


def downgrade() -> None:
    op.drop_table("processed_messages")
    op.drop_table("outbox")
    op.drop_table("reservations")
    op.drop_table("stock")


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
