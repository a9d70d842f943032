"""The saga's rules as pure functions: (state, event) → (new state, messages, history).

No I/O and no clock: the caller passes ``now`` and the timeouts, stores the new state,
records the history entry and sends the messages, all in one transaction.

An event the current state does not wait for (a reply after the saga moved on, a
second acknowledgement, anything for a finished saga) leaves the state as it is and
sends nothing; its history entry says ``ignored`` and why.

A compensation sent ``max_compensation_attempts`` times without an acknowledgement
parks the saga (PARKED): no deadline, nothing more is sent, the history says which
compensation went unanswered. A parked saga ignores every reply except the
acknowledgement it was waiting for: that one, however late, is taken as if it had come
in time and the compensation goes on (the participant did undo its step, so there is
nothing for an operator to do). Otherwise an operator's :func:`retry` sends the
compensation again and the count starts over.

A retriable step (after the pivot) is never compensated: its deadline sends its
command again, with the same backoff, and parks the saga after the same number of
sends as a compensation; its reply, however late (even to a parked saga), moves the
saga on; a negative reply changes nothing, the deadline sends the command again. A
compensation, a retriable step's command and the outcome are the three things "sent
until acknowledged" (:func:`_awaited`): they share the re-sending, parking and retry.

Once the outcome is decided it is announced (``on_completed`` or ``on_cancelled``) and
the saga is NOTIFYING: the announcement is a retriable step after the last, sent again
on its deadline and parking the saga like a compensation, until its receiver
acknowledges it on ``outcome_ack_topic``. Only then is the saga COMPLETED or CANCELLED.
The outcome of an announcing saga is in ``reason``: None when it completed, the reason
why when it was cancelled.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ordersaga.contracts.messages import WireMessage
from ordersaga.saga.definition import SagaDefinition, Send, Step, StepKind, Timeouts
from ordersaga.saga.state import (
    ACTIVE_STATUSES,
    HistoryEntry,
    SagaState,
    SagaStatus,
    Transition,
)

START = "start"
DEADLINE = "deadline"
OPERATOR_RETRY = "operator-retry"
OPERATOR_CANCEL = "operator-cancel"

_AWAITING_ACK = (SagaStatus.COMPENSATING, SagaStatus.PARKED)
_AWAITING_OUTCOME_ACK = (SagaStatus.NOTIFYING, SagaStatus.PARKED)
_AWAITING_RETRIABLE = (SagaStatus.RUNNING, SagaStatus.PARKED)


def start(
    definition: SagaDefinition,
    saga_id: str,
    data: Mapping[str, Any],
    now: datetime,
    timeouts: Timeouts,
    *,
    traceparent: str = "",
) -> Transition:
    """A new saga on ``definition`` (whose version it records), commanding its first step."""
    first = definition.steps[0]
    state = SagaState(
        saga_id=saga_id,
        status=SagaStatus.RUNNING,
        step=0,
        data=dict(data),
        deadline=_after(now, timeouts, first.timeout),
        traceparent=traceparent,
        definition_version=definition.version,
    )
    messages = [first.do(state.data)]
    return Transition(state, messages, _entry(START, "started", None, state, _sent(messages)))


def start_again(definition: SagaDefinition, state: SagaState) -> Transition:
    """A second start of a saga that exists: nothing changes, and the history says so.

    A saga whose outcome is decided (announcing, parked announcing, or finished) sends
    its outcome again: whoever started it again has not seen the outcome applied.
    """
    if not _decided(definition, state):
        return _ignored(state, START, f"saga already started; it is {state.status}")
    messages = [_outcome(definition, state)]
    note = f"saga already started; it is {state.status}; " + _sent(messages)
    return Transition(state, messages, _entry(START, "resent", state, state, note))


def on_reply(
    definition: SagaDefinition,
    state: SagaState,
    topic: str,
    message: WireMessage,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    """Apply a participant's reply (or an acknowledgement) on ``topic``."""
    status = state.status
    if status.is_terminal:
        return _ignored(state, topic, _not_waiting_for(definition, state, topic))
    if _announcing(definition, state):
        if status in _AWAITING_OUTCOME_ACK and topic == definition.outcome_ack_topic:
            return _on_outcome_acknowledged(definition, state, topic)
        return _ignored(state, topic, _not_waiting_for(definition, state, topic))
    step = definition.steps[state.step]
    if step.kind is StepKind.RETRIABLE:
        if status in _AWAITING_RETRIABLE and topic == step.reply_topic:
            return _on_retriable_reply(definition, state, step, message, now, timeouts)
    elif status is SagaStatus.RUNNING and topic == step.reply_topic:
        return _on_step_reply(definition, state, step, message, now, timeouts)
    elif status in _AWAITING_ACK and topic == step.ack_topic:
        return _on_acknowledged(definition, state, step, now, timeouts)
    return _ignored(state, topic, _not_waiting_for(definition, state, topic))


def on_deadline(
    definition: SagaDefinition, state: SagaState, now: datetime, timeouts: Timeouts
) -> Transition:
    """Act on a passed deadline: give up on a silent step, send a compensation, a
    retriable step's command or the outcome again, or park the saga when it was sent as
    often as allowed.

    A (compensatable or pivot) step that did not answer may or may not have acted, so
    it is compensated itself before the steps before it. A retriable step is never
    given up on: its command is sent again.
    """
    due = state.deadline is not None and now >= state.deadline
    if state.status not in ACTIVE_STATUSES or not due:
        return _ignored(state, DEADLINE, "no deadline due")
    if state.status is SagaStatus.RUNNING and not _retriable(definition, state):
        step = definition.steps[state.step]
        seconds = _seconds(timeouts, step.timeout)
        reason = f"{step.party} did not answer within {seconds:g}s"
        return _compensate(definition, state, state.step, now, timeouts, DEADLINE, reason)
    if state.attempts + 1 >= definition.max_compensation_attempts:
        return _park(definition, state)
    return _send_again(definition, state, now, timeouts)


def retry(
    definition: SagaDefinition, state: SagaState, now: datetime, timeouts: Timeouts
) -> Transition:
    """An operator's retry of a parked saga: send its compensation (or its retriable
    step's command, or its outcome) again, count afresh.

    The saga compensates the same step (or commands the same retriable step, or
    announces its outcome) again, as if that had just been sent for the first time. The
    retry sends it itself rather than leaving it to the timer with a deadline of now:
    ``attempts`` counts the sends after the first, so only a send made here lets the new
    round have all its ``max_compensation_attempts`` (with a maximum of one, a timer's
    send would otherwise park the saga unsent).
    Any saga not PARKED is left alone (outcome ``ignored``).
    """
    if state.status is not SagaStatus.PARKED:
        return _ignored(
            state, OPERATOR_RETRY, f"only a PARKED saga can be retried; it is {state.status}"
        )
    awaited = _awaited(definition, state)
    resumed = replace(
        state,
        status=awaited.status,
        attempts=0,
        deadline=_after(now, timeouts, awaited.timeout),
    )
    messages = [awaited.send]
    note = "retried by an operator; " + _sent(messages)
    return Transition(resumed, messages, _entry(OPERATOR_RETRY, "resumed", state, resumed, note))


def cancel(
    definition: SagaDefinition, state: SagaState, now: datetime, timeouts: Timeouts, reason: str
) -> Transition:
    """An operator's cancel: a RUNNING saga at a step before its pivot compensates now,
    as if that step's deadline had passed (the step may have acted, so it is compensated
    itself, then the steps before it), with ``reason``.

    Any other saga is left alone (outcome ``ignored``, the note says why): one at its
    pivot or after it goes forward only, one already compensating or decided has its
    course, a parked one is retried instead.
    """
    refusal = cancel_refusal(definition, state)
    if refusal is not None:
        return _ignored(state, OPERATOR_CANCEL, refusal)
    why = f"cancelled by an operator: {reason}"
    return _compensate(
        definition, state, state.step, now, timeouts, OPERATOR_CANCEL, why, "compensating"
    )


def cancel_refusal(definition: SagaDefinition, state: SagaState) -> str | None:
    """Why saga ``state`` cannot be cancelled now; None when it can."""
    if state.status is not SagaStatus.RUNNING or _announcing(definition, state):
        return (
            f"saga {state.saga_id} is {state.status}: only a RUNNING saga before its pivot "
            "can be cancelled"
        )
    step = definition.steps[state.step]
    if step.kind is not StepKind.COMPENSATABLE:
        return (
            f"saga {state.saga_id} is at {step.name}, a {step.kind} step: only a RUNNING "
            "saga before its pivot can be cancelled; from its pivot on it only goes forward"
        )
    return None


def parked_because(definition: SagaDefinition, state: SagaState) -> str:
    """Why a parked saga waits: its compensation (or retriable command, or outcome), and
    how often it went unanswered."""
    topic, _ = _awaited(definition, state).send
    return f"{topic} not acknowledged after {state.attempts + 1} attempts"


def _on_step_reply(
    definition: SagaDefinition,
    state: SagaState,
    step: Step,
    reply: WireMessage,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    event = step.reply_topic
    if not step.succeeded(reply):
        reason = f"{step.party}: {step.explain(reply)}"
        if state.step == 0:
            return _cancel(definition, state, event, reason, now, timeouts)
        return _compensate(definition, state, state.step - 1, now, timeouts, event, reason)
    return _forward(definition, state, step, event, now, timeouts)


def _on_retriable_reply(
    definition: SagaDefinition,
    state: SagaState,
    step: Step,
    reply: WireMessage,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    """A retriable step answered: on success go on (a parked saga too: the step is done);
    a refusal changes nothing, the deadline sends the command again."""
    event = step.reply_topic
    if step.succeeded(reply):
        return _forward(definition, state, step, event, now, timeouts)
    if state.status is SagaStatus.PARKED:
        return _ignored(state, event, f"{step.party}: {step.explain(reply)}; parked")
    note = f"{step.party}: {step.explain(reply)}; {step.command_topic} is sent again when due"
    return Transition(state, [], _entry(event, "refused", state, state, note))


def _forward(
    definition: SagaDefinition,
    state: SagaState,
    step: Step,
    event: str,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    """Step ``state.step`` succeeded: command the next step, or announce completion."""
    if state.step + 1 == len(definition.steps):
        return _announce(definition, state, event, None, f"{step.name} succeeded", now, timeouts)
    following = definition.steps[state.step + 1]
    advanced = replace(
        state,
        status=SagaStatus.RUNNING,
        step=state.step + 1,
        deadline=_after(now, timeouts, following.timeout),
        attempts=0,
    )
    messages = [following.do(state.data)]
    note = f"{step.name} succeeded; " + _sent(messages)
    return Transition(advanced, messages, _entry(event, "advanced", state, advanced, note))


def _on_acknowledged(
    definition: SagaDefinition,
    state: SagaState,
    step: Step,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    reason = state.reason or "cancelled"
    if state.step == 0:
        return _cancel(definition, state, step.undone_topic, reason, now, timeouts)
    return _compensate(
        definition, state, state.step - 1, now, timeouts, step.undone_topic, reason, "compensated"
    )


def _compensate(
    definition: SagaDefinition,
    state: SagaState,
    index: int,
    now: datetime,
    timeouts: Timeouts,
    event: str,
    reason: str,
    outcome: str = "",
) -> Transition:
    """Start compensating step ``index``: send its compensation and wait for the ack."""
    step = definition.steps[index]
    compensating = replace(
        state,
        status=SagaStatus.COMPENSATING,
        step=index,
        deadline=_after(now, timeouts, definition.compensation_timeout),
        attempts=0,
        reason=reason,
    )
    messages = [step.undo(state.data)]
    if not outcome:
        outcome = "timed-out" if event == DEADLINE else "compensating"
    note = f"{reason}; " + _sent(messages)
    return Transition(compensating, messages, _entry(event, outcome, state, compensating, note))


def _send_again(
    definition: SagaDefinition, state: SagaState, now: datetime, timeouts: Timeouts
) -> Transition:
    """Send the same compensation (or retriable command, or outcome) again, waiting
    twice as long each time, up to a cap."""
    attempts = state.attempts + 1
    awaited = _awaited(definition, state)
    base = _seconds(timeouts, awaited.timeout)
    wait = base * min(2**attempts, definition.backoff_cap)
    retried = replace(state, attempts=attempts, deadline=now + timedelta(seconds=wait))
    note = f"{awaited.ack_topic} not received; attempt {attempts + 1}: " + _sent([awaited.send])
    return Transition(retried, [awaited.send], _entry(DEADLINE, "retried", state, retried, note))


def _park(definition: SagaDefinition, state: SagaState) -> Transition:
    """Stop sending an unanswered compensation (or retriable command, or outcome); wait
    for its ack or an operator."""
    parked = replace(state, status=SagaStatus.PARKED, deadline=None)
    ack_topic = _awaited(definition, state).ack_topic
    note = (
        f"{parked_because(definition, state)}; parked until {ack_topic} arrives "
        "or an operator retries"
    )
    return Transition(parked, [], _entry(DEADLINE, "parked", state, parked, note))


def _cancel(
    definition: SagaDefinition,
    state: SagaState,
    event: str,
    reason: str,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    return _announce(definition, state, event, reason, reason, now, timeouts)


def _announce(
    definition: SagaDefinition,
    state: SagaState,
    event: str,
    reason: str | None,
    why: str,
    now: datetime,
    timeouts: Timeouts,
) -> Transition:
    """The outcome is decided (cancelled for ``reason``, completed when None): send it and
    wait for its acknowledgement."""
    announcing = replace(
        state,
        status=SagaStatus.NOTIFYING,
        step=definition.outcome_step,
        deadline=_after(now, timeouts, definition.compensation_timeout),
        attempts=0,
        reason=reason,
    )
    messages = [_outcome(definition, announcing)]
    outcome = "completed" if reason is None else "cancelled"
    note = f"{why}; " + _sent(messages)
    return Transition(announcing, messages, _entry(event, outcome, state, announcing, note))


def _on_outcome_acknowledged(
    definition: SagaDefinition, state: SagaState, topic: str
) -> Transition:
    finished = replace(
        state,
        status=SagaStatus.COMPLETED if state.reason is None else SagaStatus.CANCELLED,
        deadline=None,
        attempts=0,
    )
    note = f"{definition.outcome_name} acknowledged; the saga is {finished.status}"
    return Transition(finished, [], _entry(topic, "acknowledged", state, finished, note))


def _announcing(definition: SagaDefinition, state: SagaState) -> bool:
    """Whether the saga announces its outcome (NOTIFYING, or PARKED doing so)."""
    return state.step >= definition.outcome_step and not state.status.is_terminal


def _decided(definition: SagaDefinition, state: SagaState) -> bool:
    return state.status.is_terminal or _announcing(definition, state)


def _outcome(definition: SagaDefinition, state: SagaState) -> Send:
    """The outcome of a decided saga, as announced."""
    completed = (
        state.status is SagaStatus.COMPLETED if state.status.is_terminal else state.reason is None
    )
    if completed:
        return definition.on_completed(state.data)
    return definition.on_cancelled(state.data, state.reason or "cancelled")


@dataclass(frozen=True)
class _Awaited:
    """What a saga sends until it is acknowledged: the message, the topic of its
    acknowledgement, the timeout of the first wait, and the status while it waits."""

    send: Send
    ack_topic: str
    timeout: str
    status: SagaStatus


def _awaited(definition: SagaDefinition, state: SagaState) -> _Awaited:
    """What a saga that waits for an acknowledgement sent: its outcome, its retriable
    step's command, or its compensation."""
    if _announcing(definition, state):
        return _Awaited(
            _outcome(definition, state),
            definition.outcome_ack_topic,
            definition.compensation_timeout,
            SagaStatus.NOTIFYING,
        )
    step = definition.steps[state.step]
    if step.kind is StepKind.RETRIABLE:
        return _Awaited(step.do(state.data), step.reply_topic, step.timeout, SagaStatus.RUNNING)
    return _Awaited(
        step.undo(state.data),
        step.undone_topic,
        definition.compensation_timeout,
        SagaStatus.COMPENSATING,
    )


def _retriable(definition: SagaDefinition, state: SagaState) -> bool:
    """Whether the saga is at a retriable step (commanding it, or parked on it)."""
    return (
        not _announcing(definition, state)
        and definition.steps[state.step].kind is StepKind.RETRIABLE
    )


def _ignored(state: SagaState, event: str, note: str) -> Transition:
    return Transition(state, [], _entry(event, "ignored", state, state, note))


def _not_waiting_for(definition: SagaDefinition, state: SagaState, topic: str) -> str:
    if state.status.is_terminal:
        return f"{topic} after the saga was {state.status}"
    if _announcing(definition, state):
        parked = "parked, " if state.status is SagaStatus.PARKED else ""
        return (
            f"{topic} not expected: {parked}waiting for {definition.outcome_ack_topic} "
            f"({definition.outcome_name})"
        )
    step = definition.steps[state.step]
    if step.kind is StepKind.RETRIABLE:
        parked = "parked, " if state.status is SagaStatus.PARKED else ""
        return f"{topic} not expected: {parked}waiting for {step.reply_topic} ({step.name})"
    if state.status is SagaStatus.RUNNING:
        return f"{topic} not expected: waiting for {step.reply_topic} ({step.name})"
    if state.status is SagaStatus.PARKED:
        return f"{topic} not expected: parked, waiting for {step.ack_topic} (undoing {step.name})"
    return f"{topic} not expected: waiting for {step.ack_topic} (undoing {step.name})"


def _entry(
    event: str, outcome: str, before: SagaState | None, after: SagaState, note: str
) -> HistoryEntry:
    return HistoryEntry(
        event=event,
        outcome=outcome,
        from_status=before.status if before else None,
        to_status=after.status,
        step=after.step,
        note=note,
    )


def _sent(messages: list[Send]) -> str:
    return "sent " + ", ".join(topic for topic, _ in messages)


def _seconds(timeouts: Timeouts, name: str) -> float:
    try:
        return timeouts[name]
    except KeyError:
        raise KeyError(f"no timeout named {name!r}; given: {sorted(timeouts)}") from None


def _after(now: datetime, timeouts: Timeouts, name: str) -> datetime:
    return now + timedelta(seconds=_seconds(timeouts, name))
