"""Each history entry records where its message was read and what it sent; operators'
actions are audited.

``saga_history`` gains the topic, partition, offset and causation id of the message an
entry came with, the messages it sent (topic and message-id each, as JSON) and the
deadline it left set; entries written before this revision have none of these. The new
``operator_actions`` table is the audit trail.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The column types as they are at this revision, spelled out (see revision 0001).
UTC_DATETIME = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

_HISTORY_COLUMNS = (
    ("source_topic", sa.String(255)),
    ("source_partition", sa.Integer()),
    ("source_offset", sa.BigInteger()),
    ("causation_id", sa.String(64)),
    ("sent", sa.Text()),
    ("deadline", UTC_DATETIME),
)


def upgrade() -> None:
    for name, kind in _HISTORY_COLUMNS:
        op.add_column("saga_history", sa.Column(name, kind, nullable=True))
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("saga_id", sa.String(36), nullable=True),
        sa.Column("dead_letter", sa.String(300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_actions"),
    )
    op.create_index("ix_operator_actions_saga_id", "operator_actions", ["saga_id"])


def downgrade() -> None:
    op.drop_index("ix_operator_actions_saga_id", table_name="operator_actions")
    op.drop_table("operator_actions")
    with op.batch_alter_table("saga_history") as batch:
        for name, _ in reversed(_HISTORY_COLUMNS):
            batch.drop_column(name)
