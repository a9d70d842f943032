"""Saga instances and their history in the orchestrator's database (SQLAlchemy Core).

Portable: the same statements run on SQLite, PostgreSQL and MariaDB. Row locks
(``FOR UPDATE``, ``SKIP LOCKED``) are taken where the database has them; the version
check on every save is what makes a lost update impossible on all of them.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from ordersaga.db.driver import driver
from ordersaga.db.timestamps import UtcDateTime
from ordersaga.saga.rows import (
    HistoryRecord,
    history_record,
    history_row,
    instance_row,
    saga_state,
    save_row,
)
from ordersaga.saga.state import ACTIVE_STATUSES, HistoryEntry, SagaState, SagaStatus
from ordersaga.saga.statements import PostgresSaga, SagaStatements

_FINISHED = (SagaStatus.COMPLETED.value, SagaStatus.CANCELLED.value)


class StaleSaga(Exception):
    """A saga changed since it was read: the work must be redone from a fresh read.

    Raised inside the caller's transaction, which then rolls back; the consumer loop
    retries the message and the deadline timer picks the saga up on its next scan.
    """


def saga_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The ``saga_instances`` and ``saga_history`` tables, added to ``metadata``."""
    instances = Table(
        "saga_instances",
        metadata,
        Column("saga_id", String(36), primary_key=True),
        Column("saga_type", String(64), nullable=False),
        # The version of the saga_type's definition the saga started on and finishes on.
        Column("definition_version", Integer, nullable=False, server_default="1"),
        Column("status", String(16), nullable=False),
        Column("step", Integer, nullable=False),
        Column("data", Text, nullable=False),
        # Scanned by the deadline timer: only sagas still waiting have one.
        Column("deadline", UtcDateTime, nullable=True, index=True),
        Column("attempts", Integer, nullable=False),
        Column("version", Integer, nullable=False),
        Column("reason", Text, nullable=True),
        Column("traceparent", String(64), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        # Finished sagas are pruned by age (saga/retention.py).
        Index("ix_saga_instances_status_updated_at", "status", "updated_at"),
    )
    history = Table(
        "saga_history",
        metadata,
        Column("saga_id", String(36), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("at", UtcDateTime, nullable=False),
        Column("event", String(64), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("message_id", String(64), nullable=True),
        Column("from_status", String(16), nullable=True),
        Column("to_status", String(16), nullable=False),
        Column("step", Integer, nullable=False),
        Column("note", Text, nullable=True),
        # Where the event's message was read (null for a deadline or an operator's act),
        # what the event sent (JSON: topic and message-id of each), the deadline it set.
        Column("source_topic", String(255), nullable=True),
        Column("source_partition", Integer, nullable=True),
        Column("source_offset", BigInteger, nullable=True),
        Column("causation_id", String(64), nullable=True),
        Column("sent", Text, nullable=True),
        Column("deadline", UtcDateTime, nullable=True),
        PrimaryKeyConstraint("saga_id", "seq", name="pk_saga_history"),
    )
    return instances, history


@dataclass(frozen=True)
class StoredSaga:
    """A saga as an operator sees it: its state, and when it began and last changed."""

    state: SagaState
    created_at: datetime
    updated_at: datetime


def stored_saga(row: Any) -> StoredSaga:
    """A ``saga_instances`` row as a :class:`StoredSaga`."""
    return StoredSaga(saga_state(row), row["created_at"], row["updated_at"])


@dataclass(frozen=True)
class LockedSaga:
    """A saga read with its row locked, and the sequence number of its last history entry."""

    state: SagaState
    last_seq: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SagaStore:
    """Reads and writes sagas of one type through the caller's connection and transaction.

    The statements of the hot path are built once (:class:`SagaStatements`) and reused
    with bound parameters; on PostgreSQL and SQLite they run as text on the driver
    (:class:`PostgresSaga`).
    """

    instances: Table
    history: Table
    saga_type: str

    @cached_property
    def _sql(self) -> SagaStatements:
        return SagaStatements(self.instances, self.history)

    @cached_property
    def _pg(self) -> PostgresSaga:
        return PostgresSaga(self.instances, self.history)

    async def insert(self, conn: AsyncConnection, state: SagaState, now: datetime) -> None:
        """Store a new saga. A second insert of the same id fails on the primary key."""
        await self.insert_many(conn, [state], now)

    async def insert_many(
        self, conn: AsyncConnection, states: Sequence[SagaState], now: datetime
    ) -> None:
        """Store new sagas in one statement; any id stored before fails it on the primary key."""
        if states:
            rows = [instance_row(state, self.saga_type, now) for state in states]
            db = await driver(conn)
            if db is None:
                await conn.execute(self._sql.insert_instance, rows)
                return
            columns = tuple(rows[0])
            await db.execute_many(self._pg.insert_instance(columns), _values(rows))

    async def load_for_update(self, conn: AsyncConnection, saga_id: str) -> SagaState | None:
        """The saga ``saga_id``, its row locked until the transaction ends; None if unknown."""
        locked = await self.load_locked(conn, saga_id)
        return None if locked is None else locked.state

    async def load_locked(self, conn: AsyncConnection, saga_id: str) -> LockedSaga | None:
        """As :meth:`load_for_update`, with the seq of the saga's last history entry,
        read after the lock is held, so it includes what the transaction that held the
        lock before appended."""
        result = await conn.execute(self._sql.load_locked, {"wanted_saga_id": saga_id})
        row = result.mappings().one_or_none()
        if row is None:
            return None
        last_seq = await conn.scalar(self._sql.last_seq, {"wanted_saga_id": saga_id})
        return LockedSaga(saga_state(row), last_seq or 0)

    async def load_many_locked(
        self, conn: AsyncConnection, saga_ids: Sequence[str]
    ) -> dict[str, LockedSaga]:
        """As :meth:`load_locked` for every saga of ``saga_ids`` that exists, in one statement.

        The rows are locked in the order of their ids, so two transactions locking
        overlapping sets wait for each other instead of deadlocking.
        """
        if not saga_ids:
            return {}
        db = await driver(conn)
        rows: Sequence[Any]
        if db is not None:
            rows = await db.fetch_rows(self._pg.load_many_locked, self.instances, list(saga_ids))
        else:
            wanted = {"wanted_saga_ids": saga_ids}
            rows = (await conn.execute(self._sql.load_many_locked, wanted)).mappings().all()
        states = [saga_state(row) for row in rows]
        if not states:
            return {}
        times = {row["saga_id"]: (row["created_at"], row["updated_at"]) for row in rows}
        # Read now that the locks are held (see :meth:`load_locked`).
        found = [s.saga_id for s in states]
        if db is not None:
            seqs = await db.fetch(self._pg.last_seqs, found)
        else:
            seqs = list(await conn.execute(self._sql.last_seqs, {"wanted_saga_ids": found}))
        last: dict[str, int] = {saga_id: seq for saga_id, seq in seqs}
        return {s.saga_id: LockedSaga(s, last.get(s.saga_id, 0), *times[s.saga_id]) for s in states}

    async def save(self, conn: AsyncConnection, state: SagaState, now: datetime) -> SagaState:
        """Store ``state`` if the saga is still at ``state.version``; the state saved.

        Raises :class:`StaleSaga` when another transaction saved the saga first.
        """
        saved = replace(state, version=state.version + 1)
        await self.save_many(conn, [(saved, state.version)], now)
        return saved

    async def save_many(
        self, conn: AsyncConnection, saves: Sequence[tuple[SagaState, int]], now: datetime
    ) -> None:
        """Store each ``(state, expected_version)`` if its saga is still at that version.

        One statement for all. Raises :class:`StaleSaga` when any saga was saved by
        another transaction first (and the caller's transaction must then roll back).
        Where the driver cannot count the rows of a statement run for several
        parameter sets (asyncpg), the check rests on the row locks the caller took
        when it read the sagas (:meth:`load_many_locked`): no other transaction can
        have saved them since.
        """
        if not saves:
            return
        rows = [save_row(state, expected, now) for state, expected in saves]
        db = await driver(conn)
        saved: int | None
        if db is None:
            result = await conn.execute(self._sql.save, rows)
            counted = len(rows) == 1 or conn.dialect.supports_sane_multi_rowcount
            saved = result.rowcount if counted else None
        else:
            # save_row puts the id and expected version last, as the statement wants them.
            statement = self._pg.save(tuple(rows[0])[:-2])
            saved = await db.execute_many(statement, _values(rows))
        if saved is not None and saved != len(rows):
            stale = ", ".join(f"{s.saga_id}@{v}" for s, v in saves)
            raise StaleSaga(f"not every saga of {stale} is still at that version; retry")

    async def append_history(
        self,
        conn: AsyncConnection,
        saga_id: str,
        entry: HistoryEntry,
        at: datetime,
        message_id: str | None = None,
        *,
        after: int | None = None,
    ) -> None:
        """Add ``entry`` after the saga's last one, whose seq is ``after`` if the caller
        read it with the saga's row locked (:meth:`load_locked`), else read here.

        Two transactions appending at once collide on the primary key and one retries;
        normally the saga's row lock keeps them apart.
        """
        if after is None:
            # A separate read, not a subquery of the insert: MariaDB refuses those.
            after = await conn.scalar(self._sql.last_seq, {"wanted_saga_id": saga_id}) or 0
        await self.insert_history(conn, [history_row(saga_id, after + 1, entry, at, message_id)])

    async def insert_history(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert history rows made by :func:`~ordersaga.saga.rows.history_row`, in one
        statement; a seq taken twice fails it on the primary key."""
        if not rows:
            return
        db = await driver(conn)
        if db is None:
            await conn.execute(self._sql.insert_history, list(rows))
        else:
            await db.execute_many(self._pg.insert_history(tuple(rows[0])), _values(rows))

    async def due(
        self,
        conn: AsyncConnection,
        now: datetime,
        limit: int,
        versions: Collection[int] | None = None,
    ) -> list[SagaState]:
        """Up to ``limit`` waiting sagas whose deadline has passed, locked, earliest first;
        only of the definition ``versions`` given (default: all).

        Sagas another transaction holds are skipped, so several timers share the work,
        and so are sagas of other versions, left to a replica that has their definition.
        """
        conditions = [
            self.instances.c.saga_type == self.saga_type,
            self.instances.c.status.in_([s.value for s in ACTIVE_STATUSES]),
            self.instances.c.deadline <= now,
        ]
        if versions is not None:
            conditions.append(self.instances.c.definition_version.in_(sorted(versions)))
        query = (
            select(self.instances)
            .where(*conditions)
            .order_by(self.instances.c.deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await conn.execute(query)).mappings().all()
        return [saga_state(row) for row in rows]

    async def outcomes_in_a_row(
        self, conn: AsyncConnection, saga_id: str, outcome: str, limit: int
    ) -> int:
        """How many of the last entries of ``saga_id``'s history, up to ``limit``, have
        ``outcome`` one after the other (0 if the last one has not)."""
        history = self.history
        query = (
            select(history.c.outcome)
            .where(history.c.saga_id == saga_id)
            .order_by(history.c.seq.desc())
            .limit(limit)
        )
        found = 0
        for recorded in (await conn.execute(query)).scalars():
            if recorded != outcome:
                break
            found += 1
        return found

    async def find(
        self,
        conn: AsyncConnection,
        *,
        status: SagaStatus | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
    ) -> list[StoredSaga]:
        """Up to ``limit`` sagas, newest first, with ``status`` and begun before a time."""
        table = self.instances
        conditions: list[ColumnElement[bool]] = [table.c.saga_type == self.saga_type]
        if status is not None:
            conditions.append(table.c.status == status.value)
        if created_before is not None:
            conditions.append(table.c.created_at <= created_before)
        query = (
            select(table)
            .where(*conditions)
            .order_by(table.c.created_at.desc(), table.c.saga_id)
            .limit(limit)
        )
        rows = (await conn.execute(query)).mappings().all()
        return [StoredSaga(saga_state(row), row["created_at"], row["updated_at"]) for row in rows]

    async def get(self, conn: AsyncConnection, saga_id: str) -> StoredSaga | None:
        """The saga ``saga_id`` without locking it; None if unknown."""
        query = select(self.instances).where(self.instances.c.saga_id == saga_id)
        row = (await conn.execute(query)).mappings().one_or_none()
        return (
            None
            if row is None
            else StoredSaga(saga_state(row), row["created_at"], row["updated_at"])
        )

    async def count_by_status(self, conn: AsyncConnection) -> dict[SagaStatus, int]:
        """How many sagas are in each status; every status is present, zero or not."""
        status = self.instances.c.status
        query = (
            select(status, func.count())
            .where(self.instances.c.saga_type == self.saga_type)
            .group_by(status)
        )
        counts = dict.fromkeys(SagaStatus, 0)
        for value, number in (await conn.execute(query)).all():
            counts[SagaStatus(value)] = number
        return counts

    async def oldest_unfinished(self, conn: AsyncConnection) -> StoredSaga | None:
        """The unfinished saga begun first; None when every saga is finished."""
        table = self.instances
        query = (
            select(table)
            .where(table.c.saga_type == self.saga_type, table.c.status.not_in(_FINISHED))
            .order_by(table.c.created_at, table.c.saga_id)
            .limit(1)
        )
        row = (await conn.execute(query)).mappings().one_or_none()
        return None if row is None else stored_saga(row)

    async def finished_since(self, conn: AsyncConnection, since: datetime) -> int:
        """How many sagas finished (COMPLETED or CANCELLED) at ``since`` or later."""
        table = self.instances
        query = (
            select(func.count())
            .select_from(table)
            .where(
                table.c.saga_type == self.saga_type,
                table.c.status.in_(_FINISHED),
                table.c.updated_at >= since,
            )
        )
        return int(await conn.scalar(query) or 0)

    async def unfinished_by_version(self, conn: AsyncConnection) -> dict[int, int]:
        """How many sagas not yet COMPLETED or CANCELLED there are of each definition version."""
        table = self.instances
        finished = [SagaStatus.COMPLETED.value, SagaStatus.CANCELLED.value]
        query = (
            select(table.c.definition_version, func.count())
            .where(table.c.saga_type == self.saga_type, table.c.status.not_in(finished))
            .group_by(table.c.definition_version)
        )
        return {version: number for version, number in (await conn.execute(query)).all()}

    async def history_of(self, conn: AsyncConnection, saga_id: str) -> list[HistoryRecord]:
        """Every history entry of ``saga_id``, oldest first."""
        query = (
            select(self.history)
            .where(self.history.c.saga_id == saga_id)
            .order_by(self.history.c.seq)
        )
        rows = (await conn.execute(query)).mappings().all()
        return [history_record(row) for row in rows]


def _values(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows made alike (same keys, same order) as tuples of their values."""
    return [tuple(row.values()) for row in rows]
