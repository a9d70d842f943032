"""Applying the events of a polled batch to their sagas with a few statements.

The effect is that of :class:`~ordersaga.saga.runner.SagaRunner` applied to each event
in turn, each in the same transaction: every saga the events touch is read (and
locked, in the order of its id) in one statement, the pure transitions are applied in
memory in the order of the events, so that later events of a saga see what earlier
ones did, and then everything is written at once: new sagas in one insert, changed
sagas in one save with their versions checked, and the history in one insert.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import WireMessage
from ordersaga.saga import transitions
from ordersaga.saga.definition import Send
from ordersaga.saga.rows import history_row
from ordersaga.saga.runner import SagaRunner, log_entry
from ordersaga.saga.state import SagaState, Transition

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Start:
    """Start saga ``saga_id`` with ``data`` (as :meth:`SagaRunner.start`)."""

    saga_id: str
    data: Mapping[str, Any]
    traceparent: str = ""
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply on ``topic`` for saga ``saga_id`` (as :meth:`SagaRunner.reply`)."""

    saga_id: str
    topic: str
    message: WireMessage
    message_id: str | None = None


SagaEvent = Start | Reply


@dataclass(slots=True)
class _Saga:
    """A saga while the batch works on it."""

    state: SagaState
    stored_version: int | None
    """The version read, or None for a saga this batch starts."""
    last_seq: int
    changed: bool = False


async def run_events(
    runner: SagaRunner, conn: AsyncConnection, events: Sequence[SagaEvent]
) -> list[list[Send]]:
    """Apply ``events`` in order in the transaction of ``conn``; per event, what to send.

    Raises :class:`~ordersaga.saga.store.StaleSaga` if a saga read was saved by another
    transaction meanwhile, and fails on the primary key if a saga it starts was started
    by another; either way nothing of the batch may commit.
    """
    store = runner.store
    now = await runner.clock.now(conn)
    sagas = {
        saga_id: _Saga(locked.state, locked.state.version, locked.last_seq)
        for saga_id, locked in (
            await store.load_many_locked(conn, sorted({e.saga_id for e in events}))
        ).items()
    }
    history: list[dict[str, Any]] = []
    sent: list[list[Send]] = []
    for event in events:
        saga = sagas.get(event.saga_id)
        if saga is not None:
            transition = _transition(runner, saga.state, event, now)
            _apply(saga, transition)
        elif isinstance(event, Reply):
            log.warning("saga %s: %s for an unknown saga ignored", event.saga_id, event.topic)
            sent.append([])
            continue
        else:
            transition = transitions.start(
                runner.definition,
                event.saga_id,
                event.data,
                now,
                runner.timeouts,
                traceparent=event.traceparent,
            )
            saga = sagas[event.saga_id] = _Saga(transition.state, None, 0, changed=True)
        saga.last_seq += 1
        history.append(
            history_row(event.saga_id, saga.last_seq, transition.entry, now, event.message_id)
        )
        log_entry(event.saga_id, transition.entry)
        sent.append(transition.messages)
    await _write(runner, conn, sagas, history, now)
    return sent


def _transition(
    runner: SagaRunner, state: SagaState, event: SagaEvent, now: datetime
) -> Transition:
    definition = runner.definition_of(state)
    if isinstance(event, Start):
        return transitions.start_again(definition, state)
    return transitions.on_reply(definition, state, event.topic, event.message, now, runner.timeouts)


def _apply(saga: _Saga, transition: Transition) -> None:
    # As one save per changed state would: each counts one version.
    if transition.state != saga.state:
        saga.state = replace(transition.state, version=saga.state.version + 1)
        saga.changed = True


async def _write(
    runner: SagaRunner,
    conn: AsyncConnection,
    sagas: Mapping[str, _Saga],
    history: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    changed = [sagas[saga_id] for saga_id in sorted(sagas) if sagas[saga_id].changed]
    store = runner.store
    await store.insert_many(conn, [s.state for s in changed if s.stored_version is None], now)
    await store.save_many(
        conn,
        [(s.state, s.stored_version) for s in changed if s.stored_version is not None],
        now,
    )
    await store.insert_history(conn, history)
