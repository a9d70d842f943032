"""Applying the pure transitions to stored sagas, inside the caller's transaction.

Every way a saga moves — an order starts it, a reply, a passed deadline, an operator's
retry — is an event, and every event goes through :meth:`SagaRunner.apply`: the sagas
the events touch are read (and locked, in the order of their ids) in one statement, the
pure transitions are applied in memory in the order of the events, so that later events
of a saga see what earlier ones did, and then everything is written at once: new sagas
in one insert, changed sagas in one save with their versions checked, and the history
in one insert. The messages to send are returned; the caller writes them to its outbox
in the same transaction, each with the ``message-id`` the transition gives it
(:meth:`~ordersaga.saga.state.Transition.outgoing`): the history names what was sent by
those ids, and records where each event's message was read (its ``origin``). Every
transition uses the definition the saga started on (its version, looked up in the
registry), never merely the newest.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import WireMessage
from ordersaga.observability.logs import log_context
from ordersaga.observability.recorders import SagaMetrics
from ordersaga.saga import transitions
from ordersaga.saga.clock import DatabaseClock, SagaClock
from ordersaga.saga.definition import SagaDefinition, Send, Timeouts
from ordersaga.saga.failures import deadline_failed
from ordersaga.saga.metered import record
from ordersaga.saga.registry import SagaRegistry, UnknownSagaVersion
from ordersaga.saga.rows import Origin, SentMessage, history_row
from ordersaga.saga.state import HistoryEntry, SagaState, Transition
from ordersaga.saga.store import SagaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Start:
    """Start saga ``saga_id`` with ``data``; if it was started before, only a decided
    outcome is sent again (:func:`~ordersaga.saga.transitions.start_again`)."""

    saga_id: str
    data: Mapping[str, Any]
    traceparent: str = ""
    message_id: str | None = None
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply on ``topic`` for saga ``saga_id``; for an unknown saga it is logged only."""

    saga_id: str
    topic: str
    message: WireMessage
    message_id: str | None = None
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """The passed deadline of saga ``saga_id``."""

    saga_id: str
    message_id: None = None
    origin: None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """An operator's retry of parked saga ``saga_id``; a saga not parked is left alone,
    its history too (the transition's outcome is ``ignored``)."""

    saga_id: str
    message_id: None = None
    origin: None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """An operator's cancel of saga ``saga_id``, for ``reason``
    (:func:`~ordersaga.saga.transitions.cancel`); a saga that cannot be cancelled is left
    alone, its history too (the transition's outcome is ``ignored``)."""

    saga_id: str
    reason: str
    message_id: None = None
    origin: None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The deadline transition of saga ``saga_id`` raised ``error``, its ``attempt``-th
    failure in a row; the ``max_failures``-th parks the saga
    (:func:`~ordersaga.saga.failures.deadline_failed`)."""

    saga_id: str
    error: BaseException
    attempt: int
    max_failures: int
    message_id: None = None
    origin: None = None


SagaEvent = Start | Reply | Deadline | Retry | Cancel | Failed


@dataclass(slots=True)
class _Saga:
    """A saga while the events work on it."""

    state: SagaState
    stored_version: int | None
    """The version read, or None for a saga these events start."""
    last_seq: int
    started_at: datetime
    changed_at: datetime
    """When it last changed: when the step it waits on was sent."""
    changed: bool = False


@dataclass(frozen=True)
class SagaRunner:
    """The versions of one saga, where its instances are stored, its timeouts (of every
    version), and the clock its deadlines are set and compared with (the database's:
    see :mod:`~ordersaga.saga.clock`).
    """

    definitions: SagaRegistry
    store: SagaStore
    timeouts: Timeouts
    clock: SagaClock = field(default_factory=DatabaseClock)
    metrics: SagaMetrics | None = None
    """Where what the sagas do is counted (started, finished, replies, deadlines...)."""

    @property
    def definition(self) -> SagaDefinition:
        """The definition new sagas start on."""
        return self.definitions.newest

    def definition_of(self, state: SagaState) -> SagaDefinition:
        """The definition saga ``state`` started on;
        :class:`~ordersaga.saga.registry.UnknownSagaVersion` if it is not registered here."""
        return self.definitions.get(state.definition_version)

    async def check_versions(self, conn: AsyncConnection) -> None:
        """Refuse (:class:`~ordersaga.saga.registry.MissingSagaVersions`) when unfinished
        sagas need a version not registered here."""
        self.definitions.check(await self.store.unfinished_by_version(conn))

    async def start(
        self,
        conn: AsyncConnection,
        saga_id: str,
        data: Mapping[str, Any],
        *,
        traceparent: str = "",
        message_id: str | None = None,
    ) -> list[Send]:
        """Apply a :class:`Start`; the messages to send."""
        return await self.sends(conn, [Start(saga_id, data, traceparent, message_id)])

    async def reply(
        self,
        conn: AsyncConnection,
        saga_id: str,
        topic: str,
        message: WireMessage,
        message_id: str | None = None,
    ) -> list[Send]:
        """Apply a :class:`Reply`; the messages to send."""
        return await self.sends(conn, [Reply(saga_id, topic, message, message_id)])

    async def deadline(
        self, conn: AsyncConnection, state: SagaState, now: datetime
    ) -> Transition | None:
        """Act on the passed deadline of ``state``, a saga read (and locked) in ``conn``;
        its transition (carrying the messages to send)."""
        [transition] = await self.apply(conn, [Deadline(state.saga_id)], now)
        return transition

    async def retry(self, conn: AsyncConnection, saga_id: str) -> Transition | None:
        """Apply a :class:`Retry`; its transition (carrying the messages to send), or None
        if there is no such saga."""
        [transition] = await self.apply(conn, [Retry(saga_id)])
        return transition

    async def cancel(self, conn: AsyncConnection, saga_id: str, reason: str) -> Transition | None:
        """Apply a :class:`Cancel`; its transition (carrying the messages to send), or None
        if there is no such saga."""
        [transition] = await self.apply(conn, [Cancel(saga_id, reason)])
        return transition

    async def sends(
        self, conn: AsyncConnection, events: Sequence[SagaEvent], now: datetime | None = None
    ) -> list[Send]:
        """Apply ``events``; everything they send, in order (without the message ids the
        history records: a caller that sends uses :meth:`apply`)."""
        return [send for t in await self.apply(conn, events, now) if t for send in t.messages]

    async def apply(
        self, conn: AsyncConnection, events: Sequence[SagaEvent], now: datetime | None = None
    ) -> list[Transition | None]:
        """Apply ``events`` in order in the transaction of ``conn`` at ``now`` (default: the
        runner's clock); per event, its transition (None for an event of an unknown saga).

        Raises :class:`~ordersaga.saga.store.StaleSaga` if a saga read was saved by another
        transaction meanwhile, and fails on the primary key if a saga it starts was started
        by another; either way nothing of the transaction may commit.
        """
        at = now or await self.clock.now(conn)
        locked = await self.store.load_many_locked(conn, sorted({e.saga_id for e in events}))
        sagas = {
            i: _Saga(
                s.state, s.state.version, s.last_seq, s.created_at or at, s.updated_at or at
            )
            for i, s in locked.items()
        }
        history: list[dict[str, Any]] = []
        done: list[Transition | None] = []
        for event in events:
            saga = sagas.get(event.saga_id)
            transition = self._transition(saga.state if saga else None, event, at)
            if transition is None or _left_alone(event, transition):
                done.append(transition)
                continue
            transition = transition._replace(
                message_ids=tuple(str(uuid4()) for _ in transition.messages)
            )
            done.append(transition)
            if self.metrics is not None:
                self._record(saga, transition, at)
            if saga is None:
                saga = sagas[event.saga_id] = _Saga(transition.state, None, 0, at, at, changed=True)
            elif transition.state != saga.state:
                # As one save per changed state would: each counts one version.
                saga.state = replace(transition.state, version=saga.state.version + 1)
                saga.changed = True
                saga.changed_at = at
            saga.last_seq += 1
            history.append(_history_row(event, saga.last_seq, transition, at))
            log_entry(event.saga_id, transition.entry)
        await self._write(conn, [sagas[i] for i in sorted(sagas) if sagas[i].changed], history, at)
        return done

    def _record(self, saga: _Saga | None, transition: Transition, at: datetime) -> None:
        assert self.metrics is not None
        before = saga.state if saga else None
        try:
            definition = self.definition_of(transition.state)
        except UnknownSagaVersion:  # a failed deadline may be failing for this reason
            return
        started_at, changed_at = (saga.started_at, saga.changed_at) if saga else (at, at)
        record(self.metrics, definition, before, transition, at, started_at, changed_at)

    def _transition(
        self, state: SagaState | None, event: SagaEvent, now: datetime
    ) -> Transition | None:
        if state is None:
            if isinstance(event, Start):
                return transitions.start(
                    self.definition, event.saga_id, event.data, now, self.timeouts,
                    traceparent=event.traceparent,
                )  # fmt: skip
            if isinstance(event, Reply):
                log.warning("saga %s: %s for an unknown saga ignored", event.saga_id, event.topic)
            return None
        if isinstance(event, Failed):  # needs no definition: it may be what failed
            return deadline_failed(state, event.error, event.attempt, event.max_failures)
        definition = self.definition_of(state)
        if isinstance(event, Start):
            return transitions.start_again(definition, state)
        if isinstance(event, Reply):
            return transitions.on_reply(
                definition, state, event.topic, event.message, now, self.timeouts
            )
        if isinstance(event, Deadline):
            return transitions.on_deadline(definition, state, now, self.timeouts)
        if isinstance(event, Cancel):
            return transitions.cancel(definition, state, now, self.timeouts, event.reason)
        return transitions.retry(definition, state, now, self.timeouts)

    async def _write(
        self,
        conn: AsyncConnection,
        changed: Sequence[_Saga],
        history: Sequence[dict[str, Any]],
        now: datetime,
    ) -> None:
        store = self.store
        await store.insert_many(conn, [s.state for s in changed if s.stored_version is None], now)
        await store.save_many(
            conn,
            [(s.state, s.stored_version) for s in changed if s.stored_version is not None],
            now,
        )
        await store.insert_history(conn, history)


def _left_alone(event: SagaEvent, transition: Transition) -> bool:
    # An operator's retry or cancel that is refused changes nothing, its history included.
    return isinstance(event, Retry | Cancel) and transition.entry.outcome == "ignored"


def _history_row(
    event: SagaEvent, seq: int, transition: Transition, at: datetime
) -> dict[str, Any]:
    sent = [
        SentMessage(topic, message_id)
        for topic, _, message_id in transition.outgoing()
        if message_id is not None
    ]
    state = transition.state
    return history_row(
        event.saga_id,
        seq,
        transition.entry,
        at,
        event.message_id,
        origin=event.origin,
        sent=sent,
        deadline=state.deadline,
    )


LOUDER: dict[str, int] = {"parked": logging.WARNING, "timed-out": logging.INFO}
"""The outcomes logged above DEBUG: a parked saga needs a person; a step that timed out
is worth a line. The usual progress is in the saga's history and counters: at INFO it
was a line per message handled."""


def log_entry(saga_id: str, entry: HistoryEntry) -> None:
    """Log what an event did to saga ``saga_id``, as its history records it."""
    level = LOUDER.get(entry.outcome, logging.DEBUG)
    if not log.isEnabledFor(level):
        return  # most events: no log context to bind either
    with log_context(saga_id=saga_id):
        log.log(
            level,
            "saga %s: %s %s (%s → %s): %s",
            saga_id,
            entry.event,
            entry.outcome,
            entry.from_status,
            entry.to_status,
            entry.note,
        )
