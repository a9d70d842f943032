"""Compensations that are never acknowledged: the saga parks, and resumes on the late
acknowledgement or an operator's retry. Pure transitions, no I/O."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelPayment,
    OrderCreated,
    OrderUpdated,
    PaymentCancelled,
    PaymentProcessed,
    ProductReservationCancelled,
    ProductReserved,
    WireMessage,
)
from ordersaga.contracts.statuses import (
    OrderStatus,
    PaymentCancelStatus,
    PaymentStatus,
    ReservationCancelStatus,
    StockStatus,
)
from ordersaga.saga.definition import SagaDefinition
from ordersaga.saga.state import ACTIVE_STATUSES, SagaState, SagaStatus, Transition
from ordersaga.saga.transitions import on_deadline, on_reply, parked_because, retry, start
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, order_data, place_order_saga

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TIMEOUTS = {"reserve": 30.0, "payment": 20.0, "compensation": 10.0}
ORDER_ID = UUID("6f1c3c1e-5d0a-4a57-9a5e-0c2b0d0e8f11")
ORDER = OrderCreated(
    orderID=ORDER_ID,
    userID=1,
    productID=3,
    quantity=1,
    amount=Decimal("50.00"),
    status=OrderStatus.ORDER_CREATED,
)
SAGA = replace(PLACE_ORDER, max_compensation_attempts=3)
PAYMENT_SILENT = "payment did not answer within 20s"


def reserved() -> WireMessage:
    return ProductReserved(
        orderID=ORDER_ID, userID=1, productID=3, quantity=1, status=StockStatus.AVAILABLE
    )


def approved() -> WireMessage:
    return PaymentProcessed(
        orderID=ORDER_ID, userID=1, amount=Decimal("50.00"), status=PaymentStatus.PAYMENT_APPROVED
    )


def refunded() -> WireMessage:
    return PaymentCancelled(
        orderID=ORDER_ID,
        userID=1,
        amount=Decimal("50.00"),
        status=PaymentCancelStatus.PAYMENT_REFUNDED,
    )


def released() -> WireMessage:
    return ProductReservationCancelled(
        orderID=ORDER_ID,
        productID=3,
        quantity=1,
        status=ReservationCancelStatus.RESERVATION_RELEASED,
    )


def payment_timed_out(saga: SagaDefinition = SAGA) -> Transition:
    """Stock reserved, then payment silent past its deadline: cancel-payment sent once."""
    state = start(saga, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS).state
    state = on_reply(saga, state, topics.PRODUCT_RESERVED, reserved(), NOW, TIMEOUTS).state
    return on_deadline(saga, state, NOW + timedelta(seconds=20), TIMEOUTS)


def until_parked(
    saga: SagaDefinition, transition: Transition
) -> tuple[Transition, list[Transition]]:
    """Let every deadline pass unanswered until the saga parks; each transition on the way."""
    seen = [transition]
    while transition.state.status is SagaStatus.COMPENSATING:
        assert transition.state.deadline is not None
        transition = on_deadline(saga, transition.state, transition.state.deadline, TIMEOUTS)
        seen.append(transition)
    return transition, seen


def parked(saga: SagaDefinition = SAGA) -> SagaState:
    transition, _ = until_parked(saga, payment_timed_out(saga))
    assert transition.state.status is SagaStatus.PARKED
    return transition.state


def sent_topics(transitions: list[Transition]) -> list[str]:
    return [topic for t in transitions for topic, _ in t.messages]


def test_a_compensation_sent_the_maximum_times_unacknowledged_parks_the_saga() -> None:
    last, seen = until_parked(SAGA, payment_timed_out())

    assert sent_topics(seen) == [topics.CANCEL_PAYMENT] * 3
    assert [t.entry.outcome for t in seen] == ["timed-out", "retried", "retried", "parked"]
    state = last.state
    assert (state.status, state.step, state.deadline) == (SagaStatus.PARKED, 1, None)
    assert state.reason == PAYMENT_SILENT  # what the order will be told, once cancelled
    assert last.messages == []
    assert (last.entry.from_status, last.entry.to_status) == (
        SagaStatus.COMPENSATING,
        SagaStatus.PARKED,
    )
    assert (last.entry.note or "").startswith("cancel-payment not acknowledged after 3 attempts")


def test_the_configured_maximum_is_the_one_the_saga_uses() -> None:
    saga = place_order_saga(max_compensation_attempts=10)

    last, seen = until_parked(saga, payment_timed_out(saga))

    assert sent_topics(seen) == [topics.CANCEL_PAYMENT] * 10
    assert parked_because(saga, last.state) == "cancel-payment not acknowledged after 10 attempts"


def test_with_a_maximum_of_one_the_first_unanswered_compensation_parks() -> None:
    saga = replace(PLACE_ORDER, max_compensation_attempts=1)

    _, seen = until_parked(saga, payment_timed_out(saga))

    assert [t.entry.outcome for t in seen] == ["timed-out", "parked"]
    assert sent_topics(seen) == [topics.CANCEL_PAYMENT]


def test_parked_is_neither_finished_nor_watched_by_the_timer() -> None:
    assert not SagaStatus.PARKED.is_terminal
    assert SagaStatus.PARKED not in ACTIVE_STATUSES


def test_a_parked_saga_ignores_time_and_every_reply_but_its_acknowledgement() -> None:
    state = parked()

    events = [
        on_deadline(SAGA, state, NOW + timedelta(days=30), TIMEOUTS),
        on_reply(SAGA, state, topics.PAYMENT_PROCESSED, approved(), NOW, TIMEOUTS),
        on_reply(SAGA, state, topics.PRODUCT_RESERVED, reserved(), NOW, TIMEOUTS),
        on_reply(SAGA, state, topics.PRODUCT_RESERVATION_CANCELLED, released(), NOW, TIMEOUTS),
    ]

    assert all(e.state == state and e.messages == [] for e in events)
    assert {e.entry.outcome for e in events} == {"ignored"}
    assert "parked, waiting for payment-cancelled" in (events[1].entry.note or "")


def test_a_late_acknowledgement_resumes_the_compensation_as_if_it_came_in_time() -> None:
    state = parked()
    later = NOW + timedelta(hours=1)

    acknowledged = on_reply(SAGA, state, topics.PAYMENT_CANCELLED, refunded(), later, TIMEOUTS)

    assert [t for t, _ in acknowledged.messages] == [topics.CANCEL_PRODUCT_RESERVATION]
    resumed = acknowledged.state
    assert (resumed.status, resumed.step, resumed.attempts) == (SagaStatus.COMPENSATING, 0, 0)
    assert resumed.deadline == later + timedelta(seconds=10)
    assert (acknowledged.entry.outcome, acknowledged.entry.from_status) == (
        "compensated",
        SagaStatus.PARKED,
    )
    done = on_reply(
        SAGA, resumed, topics.PRODUCT_RESERVATION_CANCELLED, released(), later, TIMEOUTS
    )
    [(topic, update)] = done.messages
    assert isinstance(update, OrderUpdated)
    assert (topic, update.status, update.reason) == (
        topics.ORDER_UPDATED,
        OrderStatus.ORDER_CANCELLED,
        PAYMENT_SILENT,
    )
    assert done.state.status is SagaStatus.NOTIFYING


def test_a_saga_parked_on_its_first_step_is_cancelled_by_the_late_acknowledgement() -> None:
    state = start(SAGA, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS).state
    timed_out = on_deadline(SAGA, state, NOW + timedelta(seconds=30), TIMEOUTS)
    last, _ = until_parked(SAGA, timed_out)
    assert (last.state.status, last.state.step) == (SagaStatus.PARKED, 0)

    done = on_reply(
        SAGA, last.state, topics.PRODUCT_RESERVATION_CANCELLED, released(), NOW, TIMEOUTS
    )

    assert (done.state.status, done.state.reason) == (
        SagaStatus.NOTIFYING,
        "stock did not answer within 30s",
    )
    assert [t for t, _ in done.messages] == [topics.ORDER_UPDATED]


def test_an_operator_retry_sends_the_compensation_again_and_counts_afresh() -> None:
    state = parked()
    later = NOW + timedelta(hours=2)

    retried = retry(SAGA, state, later, TIMEOUTS)

    [(topic, cancel)] = retried.messages
    assert (topic, type(cancel)) == (topics.CANCEL_PAYMENT, CancelPayment)
    resumed = retried.state
    assert (resumed.status, resumed.step, resumed.attempts) == (SagaStatus.COMPENSATING, 1, 0)
    assert resumed.deadline == later + timedelta(seconds=10)
    assert resumed.reason == PAYMENT_SILENT
    entry = retried.entry
    assert (entry.event, entry.outcome, entry.from_status, entry.to_status) == (
        "operator-retry",
        "resumed",
        SagaStatus.PARKED,
        SagaStatus.COMPENSATING,
    )
    # Still unanswered: the full number of attempts again, then parked again.
    last, seen = until_parked(SAGA, retried)
    assert sent_topics(seen) == [topics.CANCEL_PAYMENT] * 3
    assert last.state.status is SagaStatus.PARKED


@pytest.mark.parametrize("status", ["RUNNING", "COMPENSATING", "COMPLETED", "CANCELLED"])
def test_only_a_parked_saga_can_be_retried(status: str) -> None:
    state = replace(parked(), status=SagaStatus(status), deadline=NOW)

    refused = retry(SAGA, state, NOW, TIMEOUTS)

    assert (refused.state, refused.messages, refused.entry.outcome) == (state, [], "ignored")
    assert f"it is {status}" in (refused.entry.note or "")
