"""What an operator can ask of the orchestrator's sagas, and the one thing they can do.

Reads go through the saga store; a retry goes through the saga runner, so it follows
the same rules, history and outbox as every other transition: the compensation it sends
is in the outbox when the retry's transaction commits, and the relay publishes it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.failures import parked_by_error
from ordersaga.saga.rows import HistoryRecord
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaState, SagaStatus
from ordersaga.saga.store import StaleSaga, StoredSaga
from ordersaga.saga.timer import saga_trace
from ordersaga.saga.transitions import parked_because

# A retry racing the service (a late acknowledgement, the timer) reads the saga afresh.
_RETRY_RACES = 3


class UnknownSaga(LookupError):
    """No saga has this id."""

    def __init__(self, saga_id: str) -> None:
        super().__init__(f"no saga {saga_id}")
        self.saga_id = saga_id


class NotParked(Exception):
    """Only a PARKED saga can be retried; this one is in another status."""

    def __init__(self, saga_id: str, status: SagaStatus) -> None:
        super().__init__(
            f"saga {saga_id} is {status}, not PARKED: only a parked saga can be retried"
        )
        self.saga_id = saga_id
        self.status = status


@dataclass(frozen=True)
class SagaView:
    """One saga as an operator reads it."""

    saga_id: str
    status: SagaStatus
    step: int
    step_name: str
    definition: str
    """The name and version of the definition the saga runs on: ``place-order v1``."""
    attempts: int
    """How often the compensation (or outcome) under way was sent; 0 when none is."""
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    reason: str | None
    """Why the saga is cancelling (or was cancelled), and, when PARKED, why it waits."""
    data: dict[str, Any]


@dataclass(frozen=True)
class SagaDetail:
    """A saga and its whole history, oldest entry first."""

    saga: SagaView
    history: list[HistoryRecord]


@dataclass(frozen=True)
class SagaOperations:
    """The operator's view of one saga type's instances in the orchestrator's database;
    a retry is a unit of work of ``transactions``."""

    transactions: Transactions
    runner: SagaRunner

    @property
    def engine(self) -> AsyncEngine:
        return self.transactions.engine

    async def find(
        self,
        *,
        status: SagaStatus | None = None,
        older_than: timedelta | None = None,
        limit: int = 50,
    ) -> list[SagaView]:
        """Up to ``limit`` sagas, newest first: only ``status``, only begun ``older_than`` ago."""
        async with self.engine.connect() as conn:
            now = await self.runner.clock.now(conn)
            before = None if older_than is None else now - older_than
            found = await self.runner.store.find(
                conn, status=status, created_before=before, limit=limit
            )
        return [self._view(stored) for stored in found]

    async def count(self) -> dict[SagaStatus, int]:
        """How many sagas are in each status (PARKED among them), zeros included."""
        async with self.engine.connect() as conn:
            return await self.runner.store.count_by_status(conn)

    async def show(self, saga_id: str) -> SagaDetail:
        """Saga ``saga_id`` and its history; :class:`UnknownSaga` if there is none."""
        async with self.engine.connect() as conn:
            stored = await self.runner.store.get(conn, saga_id)
            if stored is None:
                raise UnknownSaga(saga_id)
            history = await self.runner.store.history_of(conn, saga_id)
        return SagaDetail(self._view(stored), history)

    async def retry(self, saga_id: str) -> SagaView:
        """Send a parked saga's compensation (or outcome) again, its attempts counted afresh.

        Raises :class:`UnknownSaga` or :class:`NotParked`; the saga as it is afterwards.
        """
        for _ in range(_RETRY_RACES - 1):
            try:
                return await self._retry_once(saga_id)
            except StaleSaga:
                continue
        return await self._retry_once(saga_id)

    async def _retry_once(self, saga_id: str) -> SagaView:
        async with self.transactions.begin() as work:
            conn = work.conn
            transition = await self.runner.retry(conn, saga_id)
            if transition is None:
                raise UnknownSaga(saga_id)
            state = transition.state
            if transition.entry.outcome == "ignored":
                raise NotParked(saga_id, state.status)
            cause = saga_trace(state)
            for topic, message in transition.messages:
                work.send(topic, message, cause)
            stored = await self.runner.store.get(conn, saga_id)
            if stored is None:  # it was saved in this very transaction
                raise UnknownSaga(saga_id)
        return self._view(stored)

    def _view(self, stored: StoredSaga) -> SagaView:
        state = stored.state
        known = state.definition_version in self.runner.definitions.versions
        definition = self.runner.definition_of(state) if known else None
        label = f"{self.runner.definitions.name} v{state.definition_version}"
        return SagaView(
            saga_id=state.saga_id,
            status=state.status,
            step=state.step,
            step_name=definition.step_name(state.step) if definition else f"step {state.step}",
            definition=label if definition else f"{label} (not registered here)",
            attempts=_sends(state),
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            deadline=state.deadline,
            reason=self._reason(state),
            data=dict(state.data),
        )

    def _reason(self, state: SagaState) -> str | None:
        if state.status is not SagaStatus.PARKED or parked_by_error(state):
            return state.reason
        if state.definition_version not in self.runner.definitions.versions:
            return state.reason
        waiting = parked_because(self.runner.definition_of(state), state)
        return f"{waiting} (cancelling: {state.reason})" if state.reason else waiting


def _sends(state: SagaState) -> int:
    # The state counts the sends after the first.
    waiting = state.status in (SagaStatus.COMPENSATING, SagaStatus.NOTIFYING, SagaStatus.PARKED)
    return state.attempts + 1 if waiting else 0
