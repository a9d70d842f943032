"""The saga store's hot-path statements, built once and run with bound parameters.

Building and compiling a statement costs more than running it, so each is made once
per store and reused; only the parameters change from one execution to the next. On
PostgreSQL and SQLite the writes and the history read are run as SQL text on the driver
(:class:`PostgresSaga`, through :mod:`ordersaga.db.driver`).
"""

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.sql import Insert, Select, Update

from ordersaga.db.driver import insert_sql


@dataclass(frozen=True)
class SagaStatements:
    """Statements on one pair of ``saga_instances`` and ``saga_history`` tables."""

    instances: Table
    history: Table

    @cached_property
    def insert_instance(self) -> Insert:
        return insert(self.instances)

    @cached_property
    def insert_history(self) -> Insert:
        return insert(self.history)

    @cached_property
    def load_locked(self) -> Select[Any]:
        return self._locked().where(self.instances.c.saga_id == bindparam("wanted_saga_id"))

    @cached_property
    def load_many_locked(self) -> Select[Any]:
        saga_id = self.instances.c.saga_id
        return (
            self._locked()
            .where(saga_id.in_(bindparam("wanted_saga_ids", expanding=True)))
            .order_by(saga_id)
        )

    def _locked(self) -> Select[Any]:
        # Only the saga: its last history seq is read by a statement of its own, once
        # the lock is held (:attr:`last_seq`, :attr:`last_seqs`). Under READ COMMITTED a
        # statement reads from a snapshot taken when it began: one that waited for the
        # lock would get the row as its holder committed it but, from a subquery, the
        # history as it was before, and the next entry would take a seq the holder used.
        return select(self.instances).with_for_update(of=self.instances)

    @cached_property
    def last_seq(self) -> Select[Any]:
        return select(func.max(self.history.c.seq)).where(
            self.history.c.saga_id == bindparam("wanted_saga_id")
        )

    @cached_property
    def last_seqs(self) -> Select[Any]:
        saga_id = self.history.c.saga_id
        return (
            select(saga_id, func.max(self.history.c.seq))
            .where(saga_id.in_(bindparam("wanted_saga_ids", expanding=True)))
            .group_by(saga_id)
        )

    @cached_property
    def save(self) -> Update:
        return update(self.instances).where(
            self.instances.c.saga_id == bindparam("wanted_saga_id"),
            self.instances.c.version == bindparam("expected_version"),
        )


@dataclass(frozen=True)
class PostgresSaga:
    """:class:`SagaStatements`' statements as PostgreSQL text for the driver route, ids
    given as one array (``= ANY($1)``); on SQLite rewritten by
    :func:`~ordersaga.db.driver.sqlite_sql`."""

    instances: Table
    history: Table

    @cached_property
    def load_many_locked(self) -> str:
        # Locked in the order of their ids; the history seq read apart (see _locked).
        columns = ", ".join(c.name for c in self.instances.c)
        return (
            f"SELECT {columns} FROM {self.instances.name} WHERE saga_id = ANY($1) "
            "ORDER BY saga_id FOR UPDATE"
        )

    @cached_property
    def last_seqs(self) -> str:
        return (
            f"SELECT saga_id, max(seq) FROM {self.history.name} WHERE saga_id = ANY($1) "
            "GROUP BY saga_id"
        )

    @cache  # noqa: B019 -- one store per service, kept for the process's life
    def insert_instance(self, columns: tuple[str, ...]) -> str:
        return insert_sql(self.instances, columns)

    @cache  # noqa: B019
    def insert_history(self, columns: tuple[str, ...]) -> str:
        return insert_sql(self.history, columns)

    @cache  # noqa: B019
    def save(self, columns: tuple[str, ...]) -> str:
        """The versioned update setting ``columns`` (then the id and expected version)."""
        places = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, 1))
        n = len(columns)
        return (
            f"UPDATE {self.instances.name} SET {places} "
            f"WHERE saga_id = ${n + 1} AND version = ${n + 2}"
        )
