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
        # The last seq comes with the saga, in the same statement: a select list's scalar
        # subquery, which every database takes (MariaDB refuses only INSERT ... SELECT
        # from the table inserted into).
        instances, history = self.instances, self.history
        last_seq = (
            select(func.max(history.c.seq))
            .where(history.c.saga_id == instances.c.saga_id)
            .scalar_subquery()
        )
        return select(instances, last_seq.label("last_seq")).with_for_update(of=instances)

    @cached_property
    def last_seq(self) -> Select[Any]:
        return select(func.max(self.history.c.seq)).where(
            self.history.c.saga_id == bindparam("wanted_saga_id")
        )

    @cached_property
    def save(self) -> Update:
        return update(self.instances).where(
            self.instances.c.saga_id == bindparam("wanted_saga_id"),
            self.instances.c.version == bindparam("expected_version"),
        )
