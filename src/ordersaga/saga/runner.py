"""Applying the pure transitions to stored sagas, inside the caller's transaction.

Each method reads the saga (locked), applies one transition, saves it with its version
checked, appends the history entry and returns the messages to send, which the caller
writes to its outbox in the same transaction. Every transition uses the definition the
saga started on (its version, looked up in the registry), never merely the newest.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import WireMessage
from ordersaga.saga import transitions
from ordersaga.saga.clock import DatabaseClock, SagaClock
from ordersaga.saga.definition import SagaDefinition, Send, Timeouts
from ordersaga.saga.registry import SagaRegistry
from ordersaga.saga.state import HistoryEntry, SagaState, Transition
from ordersaga.saga.store import SagaStore

log = logging.getLogger(__name__)


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
        """Start saga ``saga_id``; if it was started before, only a decided outcome is sent
        again (:func:`~ordersaga.saga.transitions.start_again`)."""
        now = await self.clock.now(conn)
        existing = await self.store.load_locked(conn, saga_id)
        if existing is not None:
            again = transitions.start_again(self.definition_of(existing.state), existing.state)
            return await self._record(
                conn, existing.state, again, now, message_id, existing.last_seq
            )
        started = transitions.start(
            self.definition, saga_id, data, now, self.timeouts, traceparent=traceparent
        )
        await self.store.insert(conn, started.state, now)
        # The insert succeeded, so the saga is new and so is its history.
        await self.store.append_history(conn, saga_id, started.entry, now, message_id, after=0)
        log.info("saga %s: %s", saga_id, started.entry.note)
        return started.messages

    async def reply(
        self,
        conn: AsyncConnection,
        saga_id: str,
        topic: str,
        message: WireMessage,
        message_id: str | None = None,
    ) -> list[Send]:
        """Apply a reply on ``topic`` to saga ``saga_id``; an unknown saga is logged only."""
        locked = await self.store.load_locked(conn, saga_id)
        if locked is None:
            log.warning("saga %s: %s for an unknown saga ignored", saga_id, topic)
            return []
        now = await self.clock.now(conn)
        transition = transitions.on_reply(
            self.definition_of(locked.state), locked.state, topic, message, now, self.timeouts
        )
        return await self._record(conn, locked.state, transition, now, message_id, locked.last_seq)

    async def deadline(self, conn: AsyncConnection, state: SagaState, now: datetime) -> list[Send]:
        """Act on the passed deadline of ``state``, a saga read (and locked) in ``conn``."""
        transition = transitions.on_deadline(self.definition_of(state), state, now, self.timeouts)
        return await self._record(conn, state, transition, now, None)

    async def retry(self, conn: AsyncConnection, saga_id: str) -> Transition | None:
        """An operator's retry of parked saga ``saga_id``; None if there is no such saga.

        The transition returned carries the messages to send. A saga that is not parked
        is left alone, and so is its history: the transition's outcome is ``ignored``.
        """
        state = await self.store.load_for_update(conn, saga_id)
        if state is None:
            return None
        now = await self.clock.now(conn)
        transition = transitions.retry(self.definition_of(state), state, now, self.timeouts)
        if transition.entry.outcome != "ignored":
            await self._record(conn, state, transition, now, None)
        return transition

    async def _record(
        self,
        conn: AsyncConnection,
        before: SagaState,
        transition: Transition,
        now: datetime,
        message_id: str | None,
        last_seq: int | None = None,
    ) -> list[Send]:
        entry = transition.entry
        if transition.state != before:
            await self.store.save(conn, transition.state, now)
        await self.store.append_history(
            conn, before.saga_id, entry, now, message_id, after=last_seq
        )
        log_entry(before.saga_id, entry)
        return transition.messages


def log_entry(saga_id: str, entry: HistoryEntry) -> None:
    """Log what an event did to saga ``saga_id``, as its history records it."""
    # A parked saga needs a person: say so louder than the usual progress.
    log.log(
        logging.WARNING if entry.outcome == "parked" else logging.INFO,
        "saga %s: %s %s (%s → %s): %s",
        saga_id,
        entry.event,
        entry.outcome,
        entry.from_status,
        entry.to_status,
        entry.note,
    )
