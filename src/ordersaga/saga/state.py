"""A saga instance's state, and what a transition leaves behind. Plain values, no I/O."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from ordersaga.contracts.messages import WireMessage
from ordersaga.saga.definition import Send


class SagaStatus(StrEnum):
    RUNNING = "RUNNING"
    """Commanding the steps in order, waiting for the current step's reply; at a
    retriable step, sending its command again on each deadline until it is answered."""
    COMPENSATING = "COMPENSATING"
    """Undoing the steps already done, last first, waiting for each acknowledgement."""
    PARKED = "PARKED"
    """A compensation (or a retriable step's command, or the outcome) was sent as often
    as allowed and never acknowledged: the saga waits, without a deadline, for that
    acknowledgement or for an operator to retry. Not finished."""
    NOTIFYING = "NOTIFYING"
    """The outcome is decided and sent (``reason`` None: completed; else cancelled):
    waiting for its receiver to acknowledge it, sending it again on each deadline.
    Not finished: the saga is COMPLETED or CANCELLED only once it is acknowledged."""
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (SagaStatus.COMPLETED, SagaStatus.CANCELLED)


ACTIVE_STATUSES = (SagaStatus.RUNNING, SagaStatus.COMPENSATING, SagaStatus.NOTIFYING)
"""The statuses with a deadline, which the timer watches."""


@dataclass(frozen=True)
class SagaState:
    """One saga instance.

    ``step`` is the step being commanded (RUNNING) or compensated (COMPENSATING,
    PARKED), or one past the last step once the outcome is announced (NOTIFYING, PARKED,
    and the finished statuses); ``attempts`` counts how often that compensation or
    outcome was sent again, so it was sent ``attempts + 1`` times. ``version`` is the
    stored version this state was read at: transitions leave it alone and the store
    checks it when saving.
    """

    saga_id: str
    status: SagaStatus
    step: int
    data: dict[str, Any] = field(hash=False)
    deadline: datetime | None
    attempts: int = 0
    version: int = 0
    reason: str | None = None
    traceparent: str = ""
    definition_version: int = 1


@dataclass(frozen=True)
class HistoryEntry:
    """What one event did to a saga, for its ``saga_history``.

    ``outcome`` is one of ``started``, ``advanced``, ``completed`` or ``cancelled`` (the
    outcome decided and sent), ``compensating``, ``compensated``, ``timed-out``,
    ``retried``, ``refused`` (a retriable step answered "not yet"), ``parked``,
    ``resumed`` (an operator's retry), ``acknowledged`` (the outcome applied: the saga
    is finished), ``resent`` (the outcome sent again on a second start) or ``ignored``.
    ``from_status`` is None for the event that started the saga.
    """

    event: str
    outcome: str
    from_status: SagaStatus | None
    to_status: SagaStatus
    step: int
    note: str | None = None


class Transition(NamedTuple):
    """The result of a transition: the new state, what to send, and what to record.

    ``message_ids`` are the ``message-id`` of each of ``messages``, given by whoever
    stores the transition (the runner), so the history can name what was sent."""

    state: SagaState
    messages: list[Send]
    entry: HistoryEntry
    message_ids: tuple[str, ...] = ()

    def outgoing(self) -> list[tuple[str, "WireMessage", str | None]]:
        """Each message to send: its topic, the message, and its id if one was given."""
        ids: list[str | None] = [*self.message_ids]
        ids += [None] * (len(self.messages) - len(ids))
        return [(topic, message, i) for (topic, message), i in zip(self.messages, ids, strict=True)]
