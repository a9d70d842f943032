"""A failing deadline transition: recorded until the last allowed failure, then parked."""

from datetime import UTC, datetime

from ordersaga.saga.failures import deadline_failed, parked_by_error
from ordersaga.saga.state import SagaState, SagaStatus

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ERROR = ValueError("amount\n  is not a number")


def waiting(status: SagaStatus = SagaStatus.RUNNING, reason: str | None = None) -> SagaState:
    return SagaState("s-1", status, 1, {"amount": "x"}, NOW, attempts=1, reason=reason)


def test_a_failure_below_the_limit_leaves_the_saga_as_it_was_and_says_why() -> None:
    state = waiting()

    transition = deadline_failed(state, ERROR, failures=2, max_failures=3)

    assert transition.state == state
    assert transition.messages == []
    assert (transition.entry.event, transition.entry.outcome) == ("deadline", "failed")
    assert transition.entry.note is not None
    assert "ValueError: amount is not a number (failure 2 of 3)" in transition.entry.note
    assert not parked_by_error(transition.state)


def test_the_last_allowed_failure_parks_the_saga_with_its_error_and_earlier_reason() -> None:
    state = waiting(SagaStatus.COMPENSATING, reason="payment did not answer within 20s")

    transition = deadline_failed(state, ERROR, failures=3, max_failures=3)

    parked = transition.state
    assert (parked.status, parked.deadline, parked.step, parked.attempts) == (
        SagaStatus.PARKED,
        None,
        1,
        1,
    )
    assert parked.reason == (
        "deadline failed 3 times in a row: ValueError: amount is not a number"
        " (cancelling: payment did not answer within 20s)"
    )
    assert transition.entry.outcome == "parked"
    assert (transition.entry.from_status, transition.entry.to_status) == (
        SagaStatus.COMPENSATING,
        SagaStatus.PARKED,
    )
    assert parked_by_error(parked)


def test_a_saga_parked_for_an_unanswered_compensation_is_not_parked_by_error() -> None:
    state = waiting(SagaStatus.PARKED, reason="payment did not answer within 20s")

    assert not parked_by_error(state)
