"""The initial schema of the payment service: balances, payments, outbox and inbox.

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
        "balances",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("balance", MONEY, nullable=False),
        sa.Column("initial_balance", MONEY, nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_balances_balance_not_negative"),
        sa.CheckConstraint("initial_balance >= 0", name="ck_balances_initial_balance_not_negative"),
        sa.PrimaryKeyConstraint("user_id", name="pk_balances"),
    )
    op.create_table(
        "payments",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name="ck_payments_amount_not_negative"),
        sa.CheckConstraint(
            "status IN ('APPROVED', 'REJECTED', 'REFUNDED', 'VOIDED')",
            name="ck_payments_status",
        ),
        sa.PrimaryKeyConstraint("order_id", name="pk_payments"),
    )
    create_messaging_tables()


def downgrade() -> None:
    op.drop_table("processed_messages")
    op.drop_table("outbox")
    op.drop_table("payments")
    op.drop_table("balances")


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
