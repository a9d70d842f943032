"""A saga, declared: its steps, what each sends and waits for, and how it ends.

Pure data and functions, no I/O. A definition says nothing about time: each step
names its timeout and the caller hands in the seconds (:data:`Timeouts`), so the same
definition serves every configuration.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Step:
    """One step: a command to a participant, its reply, and how to undo it.

    ``party`` names the participant in the reasons an operator reads ("stock", not
    "reserve_stock"); ``explain`` turns a negative reply into such a reason.
    """

    name: str
    party: str
    command_topic: str
    command: Callable[[SagaData], WireMessage]
    reply_topic: str
    succeeded: Callable[[WireMessage], bool]
    compensation_topic: str
    compensation: Callable[[SagaData], WireMessage]
    ack_topic: str
    timeout: str
    explain: Callable[[WireMessage], str] = reason_of


@dataclass(frozen=True)
class SagaDefinition:
    """A saga: its steps in order, and what to send when it completes or is cancelled.

    The last step is the pivot: once it succeeds the saga completes, nothing is undone.
    Compensations are acknowledged within ``compensation_timeout`` or sent again, each
    time waiting twice as long, up to ``backoff_cap`` times the first wait. A
    compensation sent ``max_compensation_attempts`` times and still not acknowledged
    parks the saga for an operator.

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

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"saga {self.name!r} has no steps")
        if self.backoff_cap < 1:
            raise ValueError(f"saga {self.name!r}: backoff_cap must be at least 1")
        if self.max_compensation_attempts < 1:
            raise ValueError(f"saga {self.name!r}: max_compensation_attempts must be at least 1")

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic this saga waits on: each step's reply and acknowledgement, and the
        outcome's acknowledgement."""
        replies = tuple(t for s in self.steps for t in (s.reply_topic, s.ack_topic))
        return (*replies, self.outcome_ack_topic)

    @property
    def outcome_step(self) -> int:
        """The index of the outcome's announcement, the step after the last."""
        return len(self.steps)

    def step_name(self, index: int) -> str:
        """The name of step ``index``, the outcome's announcement included."""
        return self.outcome_name if index >= len(self.steps) else self.steps[index].name
