"""The audit trail: who did what to which saga or dead letter, when, why, and how it went.

An entry is written in the transaction of the action it records, so an action that did
not happen leaves no entry and one that did always leaves one. (A dead letter's replay
is a publish to the broker, not a transaction of this database: its entry is written
once the broker has answered, with the outcome it gave.)
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.db.timestamps import UtcDateTime

RETRY = "retry"
CANCEL = "cancel"
REPLAY = "replay"


def audit_table(metadata: MetaData) -> Table:
    """The ``operator_actions`` table, added to ``metadata``."""
    return Table(
        "operator_actions",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", UtcDateTime, nullable=False),
        Column("actor", String(255), nullable=False),
        Column("action", String(32), nullable=False),
        Column("saga_id", String(36), nullable=True, index=True),
        Column("dead_letter", String(300), nullable=True),
        Column("reason", Text, nullable=False),
        Column("outcome", Text, nullable=False),
    )


@dataclass(frozen=True)
class AuditEntry:
    """One recorded operator action."""

    id: int
    at: datetime
    actor: str
    action: str
    saga_id: str | None
    dead_letter: str | None
    reason: str
    outcome: str


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        saga_id=row["saga_id"],
        dead_letter=row["dead_letter"],
        reason=row["reason"],
        outcome=row["outcome"],
    )


@dataclass(frozen=True)
class AuditTrail:
    """Reads and writes the audit trail through the caller's connection."""

    table: Table

    async def record(
        self,
        conn: AsyncConnection,
        *,
        at: datetime,
        actor: str,
        action: str,
        reason: str,
        outcome: str,
        saga_id: str | None = None,
        dead_letter: str | None = None,
    ) -> AuditEntry:
        """Add an entry in the transaction of ``conn``; the entry as stored."""
        values = {
            "at": at,
            "actor": actor,
            "action": action,
            "saga_id": saga_id,
            "dead_letter": dead_letter,
            "reason": reason,
            "outcome": outcome,
        }
        result = await conn.execute(insert(self.table).values(**values))
        [key] = result.inserted_primary_key or (None,)
        if key is None:
            raise RuntimeError("the database gave no id for the audit entry")
        return AuditEntry(id=int(key), **values)  # type: ignore[arg-type]

    async def entries(
        self, conn: AsyncConnection, *, saga_id: str | None = None, limit: int | None = 100
    ) -> list[AuditEntry]:
        """Up to ``limit`` entries (all if None), newest first; only those on ``saga_id``
        if given."""
        query = select(self.table).order_by(self.table.c.id.desc()).limit(limit)
        if saga_id is not None:
            query = query.where(self.table.c.saga_id == saga_id)
        return [_entry(row) for row in (await conn.execute(query)).mappings()]
