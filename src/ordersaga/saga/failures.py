"""A deadline transition that fails: recorded, tried again, and at last the saga parked.

Pure, as the transitions are: the timer counts the failures in a row (from the saga's
history) and stores what these functions return. A saga whose deadline keeps failing
(corrupt data, a bug) must not hold up the others, nor be tried for ever: after
``max_failures`` in a row it is PARKED, without a deadline, for an operator, with the
error as its reason.
"""

from dataclasses import replace

from ordersaga.saga.state import HistoryEntry, SagaState, SagaStatus, Transition
from ordersaga.saga.transitions import DEADLINE

FAILED = "failed"
"""The history outcome of a deadline transition that raised."""

PARKED_BY_ERROR = "deadline failed"
"""How the reason of a saga parked by a failing deadline begins."""


def describe(error: BaseException) -> str:
    """The error as an operator reads it: its type and message, on one line."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def deadline_failed(
    state: SagaState, error: BaseException, failures: int, max_failures: int
) -> Transition:
    """The ``failures``-th failure in a row of ``state``'s deadline transition.

    Below ``max_failures`` the saga stays as it is (its deadline still passed, so the
    next scan tries again) and the history records the error; at ``max_failures`` the
    saga is PARKED. A reason it had (why it was cancelling) is kept after the error.
    """
    text = describe(error)
    if failures < max_failures:
        note = f"{text} (failure {failures} of {max_failures}); tried again on the next scan"
        entry = HistoryEntry(DEADLINE, FAILED, state.status, state.status, state.step, note)
        return Transition(state, [], entry)
    reason = f"{PARKED_BY_ERROR} {failures} times in a row: {text}"
    if state.reason:
        reason += f" (cancelling: {state.reason})"
    parked = replace(state, status=SagaStatus.PARKED, deadline=None, reason=reason)
    note = f"{reason}; parked until an operator retries"
    entry = HistoryEntry(DEADLINE, "parked", state.status, parked.status, parked.step, note)
    return Transition(parked, [], entry)


def parked_by_error(state: SagaState) -> bool:
    """Whether ``state`` was parked by its failing deadline (not by an unanswered compensation)."""
    return state.status is SagaStatus.PARKED and (state.reason or "").startswith(PARKED_BY_ERROR)
