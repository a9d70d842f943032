"""Each saga records the version of its definition it started on, and finishes on.

Sagas stored before this revision started on version 1, the only one there was.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "saga_instances",
        sa.Column("definition_version", sa.Integer(), nullable=False, server_default="1"),
    )


def downgrade() -> None:
    with op.batch_alter_table("saga_instances") as batch:
        batch.drop_column("definition_version")
