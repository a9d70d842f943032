"""A saga, declared: its steps, what each sends and waits for, and how it ends.

Pure data and functions, no I/O. A definition says nothing about time: each step
names its timeout and the caller hands in the seconds (:data:`Timeouts`), so the same
definition serves every configuration.

Steps are of three kinds (:class:`StepKind`), in this order: compensatable steps, then
at most one pivot, then retriable steps (``compensatable* (pivot retriable*)?``). A
definition without a pivot is all compensatable, and its last step is the point of no
return, as a pivot would be.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Any

from ordersaga.contracts.messages import WireMessage

SagaData = Mapping[str, Any]
"""What a saga carries from step to step: JSON-able, so money travels as a string."""

Timeouts = Mapping[str, float]
"""Seconds per timeout name, as the steps and the definition name them."""

Send = tuple[str, WireMessage]
"""A message to send: its topic and its model."""


def reason_of(reply: WireMessage) -> str:
    """The ``reason`` a negative reply gives, or a plain word when it gives none."""
    reason = getattr(reply, "reason", None)
    return reason if isinstance(reason, str) and reason else "refused"


class StepKind(StrEnum):
    """What a step's failure does to the saga (Garcia-Molina & Salem; Richardson)."""

    COMPENSATABLE = "compensatable"
    """May fail; once done, undone by its compensation when a later step fails or a
    deadline passes."""
    PIVOT = "pivot"
    """The point of no return: it may fail (and is then compensated like the steps
    before it), but once it succeeds the saga only goes forward."""
    RETRIABLE = "retriable"
    """After the pivot: never compensated. A deadline sends the command again; after
    ``max_compensation_attempts`` unanswered sends the saga parks for an operator."""


_ORDER = {StepKind.COMPENSATABLE: 0, StepKind.PIVOT: 1, StepKind.RETRIABLE: 2}


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step: a command to a participant, its reply, and (unless retriable) how to
    undo it.

    ``party`` names the participant in the reasons an operator reads ("stock", not
    "reserve_stock"); ``explain`` turns a negative reply into such a reason. A retriable
    step has no compensation: its reply is the acknowledgement its command waits for,
    and a negative reply only means "not yet" (the command is sent again on the
    deadline). ``reply_model`` decodes the reply when its topic is not in the contract's
    (a saga of a test, or a participant added later).
    """

    name: str
    party: str
    command_topic: str
    command: Callable[[SagaData], WireMessage]
    reply_topic: str
    succeeded: Callable[[WireMessage], bool]
    timeout: str
    kind: StepKind = StepKind.COMPENSATABLE
    compensation_topic: str | None = None
    compensation: Callable[[SagaData], WireMessage] | None = None
    ack_topic: str | None = None
    explain: Callable[[WireMessage], str] = reason_of
    reply_model: type[WireMessage] | None = None

    def __post_init__(self) -> None:
        undo = (self.compensation_topic, self.compensation, self.ack_topic)
        if self.kind is StepKind.RETRIABLE and any(part is not None for part in undo):
            raise ValueError(f"step {self.name!r} is retriable: it has no compensation")
        if self.kind is not StepKind.RETRIABLE and any(part is None for part in undo):
            raise ValueError(
                f"step {self.name!r} is {self.kind}: give its compensation_topic, "
                "compensation and ack_topic"
            )

    def undo(self, data: SagaData) -> Send:
        """The compensation of this (compensatable or pivot) step."""
        if self.compensation_topic is None or self.compensation is None:
            raise ValueError(f"step {self.name!r} is {self.kind}: nothing to compensate")
        return self.compensation_topic, self.compensation(data)

    @property
    def undone_topic(self) -> str:
        """Where this (compensatable or pivot) step's compensation is acknowledged."""
        if self.ack_topic is None:
            raise ValueError(f"step {self.name!r} is {self.kind}: nothing to compensate")
        return self.ack_topic

    def do(self, data: SagaData) -> Send:
        """The command of this step."""
        return self.command_topic, self.command(data)


@dataclass(frozen=True)
class SagaDefinition:
    """A saga: its name and version, its steps in order, and what to send when it
    completes or is cancelled.

    Every saga records the name and ``version`` of the definition it started on and
    finishes on that one (:mod:`~ordersaga.saga.registry`); a changed definition is a
    new version.

    Compensations are acknowledged within ``compensation_timeout`` or sent again, each
    time waiting twice as long, up to ``backoff_cap`` times the first wait. A
    compensation sent ``max_compensation_attempts`` times and still not acknowledged
    parks the saga for an operator. A retriable step's command is sent again in the
    same way, starting from the step's own timeout.

    The outcome (``on_completed`` or ``on_cancelled``) is itself a retriable step: its
    receiver acknowledges it on ``outcome_ack_topic``, and until it does the outcome is
    sent again with the same timeout, backoff and attempts as a compensation. Its index
    is one past the last step's (:attr:`outcome_step`).
    """

    name: str
    steps: Sequence[Step]
    compensation_timeout: str
    on_completed: Callable[[SagaData], Send]
    on_cancelled: Callable[[SagaData, str], Send]
    outcome_ack_topic: str
    outcome_name: str = "announce_outcome"
    backoff_cap: int = 8
    max_compensation_attempts: int = 10
    version: int = 1

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"saga {self.name!r} has no steps")
        if self.backoff_cap < 1:
            raise ValueError(f"saga {self.name!r}: backoff_cap must be at least 1")
        if self.max_compensation_attempts < 1:
            raise ValueError(f"saga {self.name!r}: max_compensation_attempts must be at least 1")
        if self.version < 1:
            raise ValueError(f"saga {self.name!r}: version must be at least 1")
        _check_kinds(self.name, [step.kind for step in self.steps])

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic this saga waits on: each step's reply and acknowledgement, and the
        outcome's acknowledgement."""
        replies = tuple(
            t for s in self.steps for t in (s.reply_topic, s.ack_topic) if t is not None
        )
        return (*replies, self.outcome_ack_topic)

    @property
    def commands(self) -> tuple[str, ...]:
        """Every topic this saga sends a step's command or compensation on (the outcome's
        topic is the outcome functions' own)."""
        return tuple(
            t for s in self.steps for t in (s.command_topic, s.compensation_topic) if t is not None
        )

    @property
    def reply_models(self) -> dict[str, type[WireMessage]]:
        """The models of replies on topics outside the contract, by topic."""
        return {s.reply_topic: s.reply_model for s in self.steps if s.reply_model is not None}

    @property
    def outcome_step(self) -> int:
        """The index of the outcome's announcement, the step after the last."""
        return len(self.steps)

    def step_name(self, index: int) -> str:
        """The name of step ``index``, the outcome's announcement included."""
        return self.outcome_name if index >= len(self.steps) else self.steps[index].name

    @property
    def label(self) -> str:
        """``name v<version>``, as an operator reads it."""
        return f"{self.name} v{self.version}"


def _check_kinds(name: str, kinds: Sequence[StepKind]) -> None:
    """Refuse any order of kinds but ``compensatable* (pivot retriable*)?``."""
    rule = "compensatable steps, then at most one pivot, then retriable steps"
    if kinds.count(StepKind.PIVOT) > 1:
        raise ValueError(f"saga {name!r} has {kinds.count(StepKind.PIVOT)} pivots; {rule}")
    for before, after in pairwise(kinds):
        if _ORDER[before] > _ORDER[after]:
            raise ValueError(f"saga {name!r}: a {after} step after a {before} one; {rule}")
    if StepKind.RETRIABLE in kinds and StepKind.PIVOT not in kinds:
        raise ValueError(f"saga {name!r}: retriable steps need a pivot before them; {rule}")
