"""The saga store's hot-path statements, built once and run with bound parameters.

Building and compiling a statement costs more than running it, so each is made once
per store and reused; only the parameters change from one execution to the next.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.sql import Insert, Select, Update


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
        # Only the saga: its last history seq is read by a statement of its own, once the
        # lock is held (:attr:`last_seqs`). Under READ COMMITTED a statement reads from a
        # snapshot taken when it began: one that waited for the lock would get the row as
        # its holder committed it but, from a subquery, the history as it was before, and
        # the next entry would take a seq the holder had just used.
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
