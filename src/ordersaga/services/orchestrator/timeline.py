"""A saga's timeline: its history and the operators' actions on it, as the events an
operator reads, each in the lane of the service it belongs to.

One function builds it for ``ordersaga sagas show`` and the admin API alike, so the two
always tell the same story. Built from what the orchestrator recorded: every message in
(with where it was read), every transition, every message out (with its message-id: it
reaches the broker through the outbox, so it has no partition or offset here), the
deadlines set and fired, replies ignored as late, each compensation sent, and every
operator action.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ordersaga.contracts import topics
from ordersaga.saga.audit import AuditEntry
from ordersaga.saga.definition import SagaDefinition
from ordersaga.saga.rows import HistoryRecord, Origin
from ordersaga.saga.transitions import DEADLINE, OPERATOR_CANCEL, OPERATOR_RETRY, START

ORCHESTRATOR = "orchestrator"
ORDER = "order"

_ORDER_TOPICS = (topics.ORDER_CREATED, topics.ORDER_UPDATED, topics.ORDER_STATUS_APPLIED)
_NOT_MESSAGES = (DEADLINE, OPERATOR_RETRY, OPERATOR_CANCEL)


@dataclass(frozen=True)
class TimelineEvent:
    """One event of a timeline; None where a field does not apply."""

    at: datetime
    kind: str
    service: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    message_id: str | None = None
    causation_id: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    step: str | None = None
    detail: str | None = None
    actor: str | None = None
    reason: str | None = None


def lanes(definition: SagaDefinition | None) -> dict[str, str]:
    """The service each topic of the saga belongs to: a step's command, reply,
    compensation and acknowledgement are its party's; the order's topics the order
    service's."""
    found = dict.fromkeys(_ORDER_TOPICS, ORDER)
    for step in definition.steps if definition else ():
        for topic in (
            step.command_topic,
            step.reply_topic,
            step.compensation_topic,
            step.ack_topic,
        ):
            if topic is not None:
                found[topic] = step.party
    return found


def timeline(
    history: Sequence[HistoryRecord],
    actions: Sequence[AuditEntry],
    definition: SagaDefinition | None,
) -> list[TimelineEvent]:
    """The events of a saga's ``history`` and of the operators' ``actions`` on it, by
    time (an action before the entries it caused); ``definition`` (None when it is not
    registered here) names the steps and the lanes."""
    lane = lanes(definition)
    compensations = {
        s.compensation_topic
        for s in (definition.steps if definition else ())
        if s.compensation_topic
    }
    events = [_action(entry) for entry in actions]
    deadline: datetime | None = None
    waiting_at = 0
    for record in history:
        events += _entry_events(record, definition, lane, compensations, deadline, waiting_at)
        deadline, waiting_at = record.deadline, record.entry.step
    return sorted(events, key=lambda event: event.at)


def _name(definition: SagaDefinition | None, step: int) -> str:
    return definition.step_name(step) if definition else f"step {step}"


def _action(entry: AuditEntry) -> TimelineEvent:
    return TimelineEvent(
        at=entry.at,
        kind="operator_action",
        service=ORCHESTRATOR,
        detail=f"{entry.action}: {entry.outcome}",
        actor=entry.actor,
        reason=entry.reason,
    )


def _origin(record: HistoryRecord) -> Origin | None:
    """Where the entry's message came from; for entries recorded before that was stored,
    its topic alone (the event names it)."""
    if record.origin is not None:
        return record.origin
    event = record.entry.event
    if event in _NOT_MESSAGES or record.entry.outcome == "failed":
        return None
    return Origin(topics.ORDER_CREATED if event == START else event)


def _entry_events(
    record: HistoryRecord,
    definition: SagaDefinition | None,
    lane: dict[str, str],
    compensations: set[str],
    deadline_before: datetime | None,
    step_before: int,
) -> list[TimelineEvent]:
    """The events of one history entry; a message in is labelled with the step the saga
    was at when it arrived (``step_before``), the rest with the step it left it at."""
    entry, at = record.entry, record.at
    step = _name(definition, entry.step)
    before = entry.from_status.value if entry.from_status else None
    after = entry.to_status.value
    found: list[TimelineEvent] = []
    origin = _origin(record)
    if origin is not None:
        found.append(
            TimelineEvent(
                at,
                "message_in",
                lane.get(origin.topic, ORCHESTRATOR),
                origin.topic,
                origin.partition,
                origin.offset,
                record.message_id,
                origin.causation_id,
                step=_name(definition, step_before),
            )
        )
    if entry.event == DEADLINE:
        found.append(TimelineEvent(at, "deadline_fired", ORCHESTRATOR, step=step))
    if entry.outcome == "ignored":
        kind = "late_reply_ignored" if origin is not None else "transition"
        found.append(
            TimelineEvent(
                at,
                kind,
                ORCHESTRATOR,
                origin.topic if origin else None,
                message_id=record.message_id,
                step=step,
                detail=entry.note,
                from_state=before,
                to_state=after,
            )
        )
    else:
        detail = f"{entry.outcome}: {entry.note}" if entry.note else entry.outcome
        found.append(
            TimelineEvent(
                at,
                "transition",
                ORCHESTRATOR,
                step=step,
                detail=detail,
                from_state=before,
                to_state=after,
            )
        )
    for sent in record.sent:
        kind = "compensation_attempt" if sent.topic in compensations else "message_out"
        found.append(
            TimelineEvent(
                at,
                kind,
                lane.get(sent.topic, ORCHESTRATOR),
                sent.topic,
                message_id=sent.message_id,
                causation_id=record.message_id,
                step=step,
            )
        )
    if record.deadline is not None and record.deadline != deadline_before:
        found.append(
            TimelineEvent(
                at,
                "deadline_set",
                ORCHESTRATOR,
                step=step,
                detail=f"due {record.deadline.isoformat()}",
            )
        )
    return found
