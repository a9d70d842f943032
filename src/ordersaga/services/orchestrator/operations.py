"""What an operator can ask of the orchestrator's sagas, and what they can do to them.

Shared by ``ordersaga sagas`` and the admin API, so both find, show and act alike.
Reads go through the saga store; a retry or a cancel goes through the saga runner, so
it follows the same rules, history and outbox as every other transition: what it sends
is in the outbox when its transaction commits, and the relay publishes it. Each action
is recorded in the audit trail in that same transaction.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.saga.audit import CANCEL, RETRY, AuditEntry, AuditTrail
from ordersaga.saga.definition import SagaDefinition
from ordersaga.saga.failures import parked_by_error
from ordersaga.saga.plan import PlannedCompensation, StepAhead, compensation_plan, steps_ahead
from ordersaga.saga.rows import HistoryRecord
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.search import BadQuery, SagaQuery, search
from ordersaga.saga.state import SagaState, SagaStatus
from ordersaga.saga.store import StaleSaga, StoredSaga, stored_saga
from ordersaga.saga.timer import saga_trace
from ordersaga.saga.transitions import parked_because
from ordersaga.services.orchestrator.tables import operator_actions
from ordersaga.services.orchestrator.timeline import ORDER, TimelineEvent, timeline

# A retry racing the service (a late acknowledgement, the timer) reads the saga afresh.
_RETRY_RACES = 3


class UnknownSaga(LookupError):
    """No saga has this id."""

    def __init__(self, saga_id: str) -> None:
        super().__init__(f"no saga {saga_id}")
        self.saga_id = saga_id


class ActionRefused(Exception):
    """The saga is in no state for this action; the message says why."""


class NotParked(ActionRefused):
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


class NotCancellable(ActionRefused):
    """Only a RUNNING saga before its pivot can be cancelled."""

    def __init__(self, saga_id: str, why: str) -> None:
        super().__init__(why)
        self.saga_id = saga_id


@dataclass(frozen=True)
class SagaDetail:
    """A saga, its whole history (oldest entry first), its timeline, and what it will
    still do: the steps ahead and the compensations that would run if it failed now."""

    saga: SagaView
    history: list[HistoryRecord]
    timeline: list[TimelineEvent]
    steps_ahead: list[StepAhead]
    compensation_plan: list[PlannedCompensation]


@dataclass(frozen=True)
class SagaPage:
    """A page of a search, how many sagas match in all, and the next page's cursor."""

    sagas: list[SagaView]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class Overview:
    """The sagas at a glance."""

    by_state: dict[SagaStatus, int]
    unfinished: int
    parked: int
    oldest_unfinished: SagaView | None
    finished_last_minute: int


@dataclass(frozen=True)
class ActionDone:
    """A saga as an operator's action left it, and the audit entry that records it."""

    saga: SagaView
    audit: AuditEntry


@dataclass(frozen=True)
class SagaOperations:
    """The operator's view of one saga type's instances in the orchestrator's database;
    a retry or a cancel, with its entry in ``audit``, is a unit of work of
    ``transactions``."""

    transactions: Transactions
    runner: SagaRunner
    audit: AuditTrail = field(default_factory=lambda: AuditTrail(operator_actions))

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

    async def search(self, query: SagaQuery, step: str | None = None) -> SagaPage:
        """The page of sagas ``query`` asks for; ``step`` names a step of the definitions
        (:class:`~ordersaga.saga.search.BadQuery` if none has it)."""
        if step is not None:
            query = replace(query, steps=self._step_indexes(step))
        store = self.runner.store
        async with self.engine.connect() as conn:
            now = await self.runner.clock.now(conn)
            found = await search(conn, store.instances, store.saga_type, query, now)
        views = [self._view(stored_saga(row)) for row in found.rows]
        return SagaPage(views, found.total, query.next_cursor(found.total))

    def _step_indexes(self, name: str) -> set[int]:
        versions = self.runner.definitions.versions.values()
        names = {d.step_name(i) for d in versions for i in range(d.outcome_step + 1)}
        found = {i for d in versions for i in range(d.outcome_step + 1) if d.step_name(i) == name}
        if not found:
            raise BadQuery("step", f"{name!r} is no step: one of {', '.join(sorted(names))}")
        return found

    async def overview(self) -> Overview:
        """Counts by state, the parked, the oldest unfinished saga, and how many finished
        in the last minute."""
        store = self.runner.store
        async with self.engine.connect() as conn:
            now = await self.runner.clock.now(conn)
            by_state = await store.count_by_status(conn)
            oldest = await store.oldest_unfinished(conn)
            recent = await store.finished_since(conn, now - timedelta(minutes=1))
        finished = by_state[SagaStatus.COMPLETED] + by_state[SagaStatus.CANCELLED]
        return Overview(
            by_state=by_state,
            unfinished=sum(by_state.values()) - finished,
            parked=by_state[SagaStatus.PARKED],
            oldest_unfinished=None if oldest is None else self._view(oldest),
            finished_last_minute=recent,
        )

    async def count(self) -> dict[SagaStatus, int]:
        """How many sagas are in each status (PARKED among them), zeros included."""
        async with self.engine.connect() as conn:
            return await self.runner.store.count_by_status(conn)

    async def show(self, saga_id: str) -> SagaDetail:
        """Saga ``saga_id``, its history and timeline, and what it will still do;
        :class:`UnknownSaga` if there is none."""
        async with self.engine.connect() as conn:
            stored = await self.runner.store.get(conn, saga_id)
            if stored is None:
                raise UnknownSaga(saga_id)
            history = await self.runner.store.history_of(conn, saga_id)
            actions = await self.audit.entries(conn, saga_id=saga_id, limit=None)
        definition = self._definition(stored.state)
        state = stored.state
        return SagaDetail(
            saga=self._view(stored),
            history=history,
            timeline=timeline(history, actions, definition),
            steps_ahead=steps_ahead(definition, state, ORDER) if definition else [],
            compensation_plan=compensation_plan(definition, state) if definition else [],
        )

    async def audit_entries(self, saga_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The audit trail, newest first; only the actions on ``saga_id`` if given."""
        async with self.engine.connect() as conn:
            return await self.audit.entries(conn, saga_id=saga_id, limit=limit)

    async def record(
        self, *, actor: str, action: str, reason: str, outcome: str, dead_letter: str
    ) -> AuditEntry:
        """Record an action on something other than a saga (a dead letter's replay)."""
        async with self.engine.begin() as conn:
            at = await self.runner.clock.now(conn)
            return await self.audit.record(
                conn,
                at=at,
                actor=actor,
                action=action,
                reason=reason,
                outcome=outcome,
                dead_letter=dead_letter,
            )

    async def retry(self, saga_id: str, *, actor: str, reason: str) -> ActionDone:
        """Send a parked saga's compensation (or outcome) again, its attempts counted
        afresh; audited as ``actor``'s, for ``reason``.

        Raises :class:`UnknownSaga` or :class:`NotParked`; the saga as it is afterwards.
        """
        return await self._act(saga_id, actor, RETRY, reason)

    async def cancel(self, saga_id: str, *, actor: str, reason: str) -> ActionDone:
        """Compensate a RUNNING saga before its pivot now, for ``reason``; audited as
        ``actor``'s. Raises :class:`UnknownSaga` or :class:`NotCancellable`."""
        return await self._act(saga_id, actor, CANCEL, reason)

    async def _act(self, saga_id: str, actor: str, action: str, reason: str) -> ActionDone:
        # An action racing the service (a late acknowledgement, the timer) reads afresh.
        for _ in range(_RETRY_RACES - 1):
            try:
                return await self._act_once(saga_id, actor, action, reason)
            except StaleSaga:
                continue
        return await self._act_once(saga_id, actor, action, reason)

    async def _act_once(self, saga_id: str, actor: str, action: str, reason: str) -> ActionDone:
        async with self.transactions.begin() as work:
            conn = work.conn
            # Read first, so the action's entry is not later than the history it causes.
            at = await self.runner.clock.now(conn)
            if action == RETRY:
                transition = await self.runner.retry(conn, saga_id)
            else:
                transition = await self.runner.cancel(conn, saga_id, reason)
            if transition is None:
                raise UnknownSaga(saga_id)
            state = transition.state
            if transition.entry.outcome == "ignored":
                if action == RETRY:
                    raise NotParked(saga_id, state.status)
                raise NotCancellable(saga_id, transition.entry.note or "cannot be cancelled")
            cause = saga_trace(state)
            for topic, message, message_id in transition.outgoing():
                work.send(topic, message, cause, message_id=message_id)
            entry = await self.audit.record(
                conn,
                at=at,
                actor=actor,
                action=action,
                reason=reason,
                outcome=transition.entry.note or transition.entry.outcome,
                saga_id=saga_id,
            )
            stored = await self.runner.store.get(conn, saga_id)
            if stored is None:  # it was saved in this very transaction
                raise UnknownSaga(saga_id)
        return ActionDone(self._view(stored), entry)

    def _definition(self, state: SagaState) -> SagaDefinition | None:
        if state.definition_version not in self.runner.definitions.versions:
            return None
        return self.runner.definition_of(state)

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
