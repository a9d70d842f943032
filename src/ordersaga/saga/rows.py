"""Saga rows as stored, and back: the columns of an instance and of a history entry."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from ordersaga.saga.state import HistoryEntry, SagaState, SagaStatus


@dataclass(frozen=True)
class Origin:
    """Where the message an event came from was read: its topic, partition, offset, and
    the id of the message that caused it (empty when none did)."""

    topic: str
    partition: int | None = None
    offset: int | None = None
    causation_id: str | None = None


@dataclass(frozen=True)
class SentMessage:
    """A message an event sent: its topic and ``message-id``."""

    topic: str
    message_id: str


@dataclass(frozen=True)
class HistoryRecord:
    """One stored entry of a saga's history: what the event did, the message it came
    with (``message_id``, ``origin``), what it sent, and the deadline it left set."""

    seq: int
    at: datetime
    entry: HistoryEntry
    message_id: str | None
    origin: Origin | None = None
    sent: tuple[SentMessage, ...] = ()
    deadline: datetime | None = None


def history_record(row: RowMapping) -> HistoryRecord:
    """A ``saga_history`` row as a :class:`HistoryRecord`."""
    from_status = row["from_status"]
    entry = HistoryEntry(
        event=row["event"],
        outcome=row["outcome"],
        from_status=SagaStatus(from_status) if from_status else None,
        to_status=SagaStatus(row["to_status"]),
        step=row["step"],
        note=row["note"],
    )
    topic = row["source_topic"]
    origin = (
        Origin(topic, row["source_partition"], row["source_offset"], row["causation_id"])
        if topic
        else None
    )
    sent = tuple(SentMessage(s["topic"], s["message_id"]) for s in json.loads(row["sent"] or "[]"))
    return HistoryRecord(
        row["seq"], row["at"], entry, row["message_id"], origin, sent, row["deadline"]
    )


def history_row(
    saga_id: str,
    seq: int,
    entry: HistoryEntry,
    at: datetime,
    message_id: str | None,
    *,
    origin: Origin | None = None,
    sent: Sequence[SentMessage] = (),
    deadline: datetime | None = None,
) -> dict[str, Any]:
    """The ``saga_history`` columns of ``entry``, the saga's ``seq``-th: came with the
    message ``message_id`` read at ``origin``, sent ``sent``, left ``deadline`` set."""
    return {
        "saga_id": saga_id,
        "seq": seq,
        "at": at,
        "event": entry.event,
        "outcome": entry.outcome,
        "message_id": message_id or None,
        "from_status": entry.from_status.value if entry.from_status else None,
        "to_status": entry.to_status.value,
        "step": entry.step,
        "note": entry.note,
        "source_topic": origin.topic if origin else None,
        "source_partition": origin.partition if origin else None,
        "source_offset": origin.offset if origin else None,
        "causation_id": (origin.causation_id or None) if origin else None,
        "sent": json.dumps([{"topic": s.topic, "message_id": s.message_id} for s in sent])
        if sent
        else None,
        "deadline": deadline,
    }


def instance_row(state: SagaState, saga_type: str, now: datetime) -> dict[str, Any]:
    """Every ``saga_instances`` column of a new saga ``state``."""
    return {
        "saga_id": state.saga_id,
        "saga_type": saga_type,
        "definition_version": state.definition_version,
        "created_at": now,
        **changed_columns(state, now),
        "version": state.version,
    }


def save_row(state: SagaState, expected_version: int, now: datetime) -> dict[str, Any]:
    """The parameters of the versioned save of ``state`` over the stored ``expected_version``."""
    return {
        **changed_columns(state, now),
        "version": state.version,
        "wanted_saga_id": state.saga_id,
        "expected_version": expected_version,
    }


def changed_columns(state: SagaState, now: datetime) -> dict[str, Any]:
    """The ``saga_instances`` columns a transition may change."""
    return {
        "status": state.status.value,
        "step": state.step,
        "data": json.dumps(state.data, sort_keys=True),
        "deadline": state.deadline,
        "attempts": state.attempts,
        "reason": state.reason,
        "traceparent": state.traceparent,
        "updated_at": now,
    }


def saga_state(row: Mapping[Any, Any]) -> SagaState:
    """A ``saga_instances`` row as a :class:`SagaState`."""
    return SagaState(
        saga_id=row["saga_id"],
        status=SagaStatus(row["status"]),
        step=row["step"],
        data=json.loads(row["data"]),
        deadline=row["deadline"],
        attempts=row["attempts"],
        version=row["version"],
        reason=row["reason"],
        traceparent=row["traceparent"],
        definition_version=row["definition_version"],
    )
