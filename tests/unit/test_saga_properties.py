"""Properties of the saga engine for any definition and any sequence of events.

A generic saga of one to six steps of every kind (compensatable steps, then maybe a
pivot, then retriable steps) is fed replies (right or wrong, successful or not),
acknowledgements, passing time and operators' retries in any order; whatever happens,
it must end properly: finished sagas stay finished, completion means every step
succeeded, and a cancellation comes only after everything commanded was undone and
acknowledged. A retriable step is never compensated, and once one is commanded the saga
can only complete. The outcome, once decided, never changes and is announced until its
receiver acknowledges it; only then is the saga finished. A compensation (or a
retriable step's command, or the outcome) is sent at most ``MAX_ATTEMPTS`` times in a
row before the saga parks, and a parked saga moves only on its acknowledgement or a
retry.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from ordersaga.contracts.messages import WireMessage
from ordersaga.saga.definition import SagaData, SagaDefinition, Send, Step, StepKind
from ordersaga.saga.state import SagaState, SagaStatus, Transition
from ordersaga.saga.transitions import on_deadline, on_reply, retry, start, start_again

SAGA_ID = UUID("0b9f6c52-8d8e-4d3a-bb1e-2f0a4c1d9e77")
NOW = datetime(2024, 5, 1, tzinfo=UTC)
MAX_ATTEMPTS = 3


class Command(WireMessage):
    message_type: ClassVar[str] = "Command"
    step: int
    undo: bool


class Reply(WireMessage):
    message_type: ClassVar[str] = "Reply"
    ok: bool
    reason: str | None = None


class Finished(WireMessage):
    message_type: ClassVar[str] = "Finished"
    completed: bool
    reason: str | None = None


def _make_step(index: int, kind: StepKind) -> Step:
    def command(data: SagaData) -> WireMessage:
        return Command(orderID=data["id"], step=index, undo=False)

    def compensation(data: SagaData) -> WireMessage:
        return Command(orderID=data["id"], step=index, undo=True)

    retriable = kind is StepKind.RETRIABLE
    return Step(
        name=f"step{index}",
        party=f"party{index}",
        command_topic=f"do-{index}",
        command=command,
        reply_topic=f"done-{index}",
        succeeded=lambda reply: isinstance(reply, Reply) and reply.ok,
        timeout=f"t{index}",
        kind=kind,
        compensation_topic=None if retriable else f"undo-{index}",
        compensation=None if retriable else compensation,
        ack_topic=None if retriable else f"undone-{index}",
    )


def _completed(data: SagaData) -> Send:
    return "finished", Finished(orderID=data["id"], completed=True)


def _cancelled(data: SagaData, reason: str) -> Send:
    return "finished", Finished(orderID=data["id"], completed=False, reason=reason)


Kinds = tuple[StepKind, ...]


def definition(kinds: Kinds) -> SagaDefinition:
    return SagaDefinition(
        name="generic",
        steps=[_make_step(i, kind) for i, kind in enumerate(kinds)],
        compensation_timeout="undo",
        on_completed=_completed,
        on_cancelled=_cancelled,
        outcome_ack_topic=APPLIED,
        max_compensation_attempts=MAX_ATTEMPTS,
    )


APPLIED = "finished-applied"
TIMEOUTS = {"t0": 5.0, "t1": 7.0, "t2": 3.0, "t3": 11.0, "t4": 4.0, "t5": 6.0, "undo": 2.0}


def _kinds(compensatable: int, pivot: bool, retriable: int) -> Kinds:
    with_pivot = (StepKind.PIVOT,) if pivot or retriable else ()
    return (
        (StepKind.COMPENSATABLE,) * compensatable + with_pivot + (StepKind.RETRIABLE,) * retriable
    )


# compensatable* (pivot retriable*)?: zero to three compensatable steps, maybe a pivot,
# zero to two retriable steps (which need the pivot); at least one step.
kinds_of_steps = st.builds(_kinds, st.integers(0, 3), st.booleans(), st.integers(0, 2)).filter(
    lambda kinds: len(kinds) > 0
)

# An event: ("reply", step, ok) on done-<step>; ("ack", step) on undone-<step>;
# ("expected", ok), the reply or ack the saga waits for now; ("wait", seconds), then
# the deadline check; ("due",), time passes to the saga's deadline exactly, then the
# check (so that compensations often go unanswered long enough to park the saga);
# ("retry",), an operator's retry; ("applied",), the outcome's acknowledgement.
events = st.one_of(
    st.tuples(st.just("applied")),
    st.tuples(st.just("reply"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("ack"), st.integers(0, 5)),
    st.tuples(st.just("expected"), st.booleans()),
    st.tuples(st.just("wait"), st.floats(0, 60, allow_nan=False)),
    st.tuples(st.just("due")),
    st.tuples(st.just("retry")),
)
WAITING_FOR_ACK = (SagaStatus.COMPENSATING, SagaStatus.PARKED)


@dataclass
class Run:
    """A saga driven through events, with everything it sent and accepted."""

    saga: SagaDefinition
    state: SagaState
    now: datetime
    sent: list[Send] = field(default_factory=list)
    transitions: list[tuple[SagaState, Transition]] = field(default_factory=list)
    succeeded: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    acknowledged: set[int] = field(default_factory=set)
    outcome_acknowledged: bool = False

    def apply(self, event: tuple[object, ...]) -> None:
        before = self.state
        transition = self._transition(event)
        self.transitions.append((before, transition))
        self.sent += transition.messages
        self.state = transition.state
        entry = transition.entry
        if entry.outcome in ("ignored", "refused") or entry.event in ("deadline", "operator-retry"):
            return
        if entry.event == APPLIED:
            self.outcome_acknowledged = True
        elif before.status is SagaStatus.RUNNING or self.retriable(before.step):
            reply = event_reply(event)
            (self.succeeded if reply.ok else self.failed).add(before.step)
        else:
            self.acknowledged.add(before.step)

    def _transition(self, event: tuple[object, ...]) -> Transition:
        kind = event[0]
        if kind == "retry":
            return retry(self.saga, self.state, self.now, TIMEOUTS)
        if kind == "wait":
            assert isinstance(event[1], float)
            self.now += timedelta(seconds=event[1])
            return on_deadline(self.saga, self.state, self.now, TIMEOUTS)
        if kind == "due":
            self.now = max(self.now, self.state.deadline or self.now)
            return on_deadline(self.saga, self.state, self.now, TIMEOUTS)
        topic = self._topic(event)
        return on_reply(self.saga, self.state, topic, event_reply(event), self.now, TIMEOUTS)

    def _topic(self, event: tuple[object, ...]) -> str:
        if event[0] == "reply":
            return f"done-{event[1]}"
        if event[0] == "ack":
            return f"undone-{event[1]}"
        if event[0] == "applied" or self.announcing():
            return APPLIED
        waiting = self.state.status in WAITING_FOR_ACK and not self.retriable(self.state.step)
        return f"{'undone' if waiting else 'done'}-{self.state.step}"

    def retriable(self, step: int) -> bool:
        """Whether step ``step`` is a retriable one (the outcome's announcement is not)."""
        steps = self.saga.steps
        return step < len(steps) and steps[step].kind is StepKind.RETRIABLE

    def announcing(self) -> bool:
        """Whether the outcome is decided and the saga waits for its acknowledgement."""
        return self.state.step == len(self.saga.steps) and not self.state.status.is_terminal

    def outcomes(self) -> list[Finished]:
        return [m for _, m in self.sent if isinstance(m, Finished)]

    def commanded(self) -> list[int]:
        return [m.step for t, m in self.sent if isinstance(m, Command) and not m.undo]

    def compensated(self) -> list[int]:
        return [m.step for t, m in self.sent if isinstance(m, Command) and m.undo]


def event_reply(event: tuple[object, ...]) -> Reply:
    ok = bool(event[-1]) if event[0] in ("reply", "expected") else True
    return Reply(orderID=SAGA_ID, ok=ok, reason=None if ok else "no")


def run(kinds: Kinds, sequence: list[tuple[object, ...]]) -> Run:
    saga = definition(kinds)
    started = start(saga, str(SAGA_ID), {"id": str(SAGA_ID)}, NOW, TIMEOUTS)
    driven = Run(saga, started.state, NOW, sent=list(started.messages))
    for event in sequence:
        driven.apply(event)
    return driven


# Any events; or any events around a stall long enough to park a saga that is running
# or compensating when it begins.
STALL: list[tuple[object, ...]] = [("due",)] * (MAX_ATTEMPTS + 1)
stalled = st.tuples(st.lists(events, max_size=20), st.lists(events, max_size=20)).map(
    lambda around: around[0] + STALL + around[1]
)
scenarios = given(kinds_of_steps, st.one_of(st.lists(events, max_size=40), stalled))


@settings(max_examples=300)
@scenarios
def test_a_finished_saga_never_changes_again(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    for before, transition in driven.transitions:
        if before.status.is_terminal:
            assert transition.state == before
            assert transition.messages == []
            assert transition.entry.outcome == "ignored"


@settings(max_examples=300)
@scenarios
def test_completed_only_after_every_step_succeeded(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    if driven.state.status is SagaStatus.COMPLETED:
        assert driven.succeeded == set(range(len(kinds)))
        # Each step commanded in order; a retriable one perhaps several times.
        assert list(dict.fromkeys(driven.commanded())) == list(range(len(kinds)))
        assert driven.compensated() == []
        assert driven.sent[-1] == _completed({"id": str(SAGA_ID)})


@settings(max_examples=300)
@scenarios
def test_cancelled_only_after_every_commanded_step_was_undone_and_acknowledged(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    if driven.state.status is SagaStatus.CANCELLED:
        # A step that answered "failed" did nothing to undo; every other step commanded did.
        to_undo = set(driven.commanded()) - driven.failed
        assert to_undo <= driven.acknowledged
        assert set(driven.compensated()) == to_undo
        _, last = driven.sent[-1]
        assert isinstance(last, Finished) and not last.completed
        assert last.reason == driven.state.reason


@settings(max_examples=300)
@scenarios
def test_every_command_is_followed_by_its_compensation_unless_the_saga_completes(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    commands = [m for _, m in driven.sent if isinstance(m, Command)]
    for position, command in enumerate(commands):
        if command.undo or command.step in driven.failed:
            continue
        later = commands[position + 1 :]
        undone = any(c.undo and c.step == command.step for c in later)
        if driven.state.status is SagaStatus.CANCELLED:
            assert undone, f"step {command.step} was commanded and never compensated"
        if driven.state.status is SagaStatus.COMPLETED:
            assert not undone


@settings(max_examples=300)
@scenarios
def test_compensations_run_last_first_and_the_end_is_announced_once(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    first_undos = list(dict.fromkeys(driven.compensated()))
    assert first_undos == sorted(first_undos, reverse=True)
    endings = driven.outcomes()
    decided = driven.state.status.is_terminal or driven.announcing()
    assert bool(endings) == decided
    assert len(set(endings)) <= 1, "the outcome changed after it was announced"


@settings(max_examples=300)
@scenarios
def test_a_saga_finishes_only_once_its_outcome_is_acknowledged(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    assert driven.state.status.is_terminal == driven.outcome_acknowledged
    for before, transition in driven.transitions:
        if transition.state.status.is_terminal and not before.status.is_terminal:
            assert transition.entry.event == APPLIED
            assert transition.messages == []


@settings(max_examples=300)
@scenarios
def test_a_second_start_sends_the_decided_outcome_again_and_changes_nothing(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    again = start_again(driven.saga, driven.state)

    assert again.state == driven.state
    if driven.state.status.is_terminal or driven.announcing():
        assert [m for _, m in again.messages] == driven.outcomes()[-1:]
    else:
        assert (again.messages, again.entry.outcome) == ([], "ignored")


@settings(max_examples=300)
@scenarios
def test_a_compensation_is_sent_at_most_the_maximum_times_in_a_row_then_the_saga_parks(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    in_a_row = 0
    for before, transition in driven.transitions:
        undos = [
            m
            for _, m in transition.messages
            if (isinstance(m, Command) and (m.undo or driven.retriable(m.step)))
            or isinstance(m, Finished)
        ]
        if transition.entry.outcome == "retried":
            in_a_row += len(undos)  # sent again on a deadline: the same round
        elif undos:
            in_a_row = len(undos)  # a new compensation, or an operator's retry
        assert in_a_row <= MAX_ATTEMPTS
        if transition.entry.outcome == "parked":
            assert in_a_row == MAX_ATTEMPTS
            assert before.status in (SagaStatus.COMPENSATING, SagaStatus.NOTIFYING) or (
                before.status is SagaStatus.RUNNING and driven.retriable(before.step)
            )
            assert transition.messages == []


@settings(max_examples=300)
@scenarios
def test_a_parked_saga_moves_only_on_its_acknowledgement_or_a_retry(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    for before, transition in driven.transitions:
        if transition.state.status is SagaStatus.PARKED:
            assert transition.state.deadline is None
        if before.status is not SagaStatus.PARKED:
            continue
        event = transition.entry.event
        if transition.entry.outcome == "ignored":
            assert (transition.state, transition.messages) == (before, [])
        else:
            if before.step == len(driven.saga.steps):
                awaited = APPLIED
            elif driven.retriable(before.step):
                awaited = f"done-{before.step}"
            else:
                awaited = f"undone-{before.step}"
            assert event in (awaited, "operator-retry")
            assert transition.state.status is not SagaStatus.PARKED


@settings(max_examples=300)
@scenarios
def test_a_retriable_step_is_never_compensated_and_once_commanded_the_saga_only_completes(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    retriable = {i for i, kind in enumerate(kinds) if kind is StepKind.RETRIABLE}
    assert not retriable & set(driven.compensated())
    if retriable & set(driven.commanded()):
        assert driven.state.status is not SagaStatus.CANCELLED
        assert all(finished.completed for finished in driven.outcomes())
        # Past the pivot: nothing before it is undone either.
        assert driven.compensated() == []


@settings(max_examples=300)
@scenarios
def test_a_deadline_at_a_retriable_step_sends_its_command_again_or_parks(
    kinds: Kinds, sequence: list[tuple[object, ...]]
) -> None:
    driven = run(kinds, sequence)

    for before, transition in driven.transitions:
        at_retriable = before.status is SagaStatus.RUNNING and driven.retriable(before.step)
        if not at_retriable or transition.entry.event != "deadline":
            continue
        if transition.entry.outcome == "ignored":
            continue
        assert transition.state.step == before.step
        if transition.entry.outcome == "parked":
            assert transition.messages == []
        else:
            assert transition.entry.outcome == "retried"
            assert [(t, m) for t, m in transition.messages] == [
                (f"do-{before.step}", Command(orderID=SAGA_ID, step=before.step, undo=False))
            ]
            assert transition.state.status is SagaStatus.RUNNING
