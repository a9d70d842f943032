"""The place-order saga's transitions, without I/O: every outcome, timeout and late reply."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from uuid import UUID

import pytest

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    CancelPayment,
    CancelProductReservation,
    OrderCreated,
    OrderStatusApplied,
    OrderUpdated,
    PaymentCancelled,
    PaymentProcessed,
    ProcessPayment,
    ProductReservationCancelled,
    ProductReserved,
    ReserveProduct,
    WireMessage,
)
from ordersaga.contracts.statuses import (
    OrderStatus,
    PaymentCancelStatus,
    PaymentStatus,
    ReservationCancelStatus,
    StockStatus,
)
from ordersaga.saga.state import SagaState, SagaStatus, Transition
from ordersaga.saga.transitions import on_deadline, on_reply, start
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, order_data

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
INSUFFICIENT_STOCK = "insufficient stock for product 3: 0 on hand, 1 requested"
INSUFFICIENT_FUNDS = "insufficient funds: balance 10.00, amount 50.00"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def started() -> SagaState:
    return start(PLACE_ORDER, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS).state


def reserved(status: StockStatus = StockStatus.AVAILABLE, reason: str | None = None) -> WireMessage:
    return ProductReserved(
        orderID=ORDER_ID, userID=1, productID=3, quantity=1, status=status, reason=reason
    )


def paid(
    status: PaymentStatus = PaymentStatus.PAYMENT_APPROVED, reason: str | None = None
) -> WireMessage:
    return PaymentProcessed(
        orderID=ORDER_ID, userID=1, amount=Decimal("50.00"), status=status, reason=reason
    )


def released() -> WireMessage:
    return ProductReservationCancelled(
        orderID=ORDER_ID,
        productID=3,
        quantity=1,
        status=ReservationCancelStatus.RESERVATION_RELEASED,
    )


def refunded() -> WireMessage:
    return PaymentCancelled(
        orderID=ORDER_ID,
        userID=1,
        amount=Decimal("50.00"),
        status=PaymentCancelStatus.PAYMENT_REFUNDED,
    )


COMPLETED, CANCELLED = OrderStatus.ORDER_COMPLETED, OrderStatus.ORDER_CANCELLED


def applied_as(status: OrderStatus) -> WireMessage:
    return OrderStatusApplied(orderID=ORDER_ID, status=status)


def reply(state: SagaState, topic: str, message: WireMessage, seconds: float = 1) -> Transition:
    return on_reply(PLACE_ORDER, state, topic, message, at(seconds), TIMEOUTS)


def deadline(state: SagaState, seconds: float) -> Transition:
    return on_deadline(PLACE_ORDER, state, at(seconds), TIMEOUTS)


def only(transition: Transition) -> tuple[str, WireMessage]:
    [sent] = transition.messages
    return sent


def awaiting_payment() -> SagaState:
    return reply(started(), topics.PRODUCT_RESERVED, reserved()).state


def test_a_new_saga_reserves_the_order_stock() -> None:
    transition = start(PLACE_ORDER, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS)

    topic, command = only(transition)
    assert topic == topics.RESERVE_PRODUCT
    assert command == ReserveProduct(**ORDER.model_dump())
    state = transition.state
    assert (state.status, state.step, state.deadline) == (SagaStatus.RUNNING, 0, at(30))
    assert state.data["amount"] == "50.00"
    assert (transition.entry.outcome, transition.entry.from_status) == ("started", None)


def test_stock_reserved_then_payment_approved_completes_the_order() -> None:
    reserving = reply(started(), topics.PRODUCT_RESERVED, reserved(), seconds=2)
    topic, command = only(reserving)
    assert topic == topics.PROCESS_PAYMENT
    assert isinstance(command, ProcessPayment)
    assert command.amount == Decimal("50.00")
    assert command.status is OrderStatus.ORDER_CREATED
    assert (reserving.state.step, reserving.state.deadline) == (1, at(22))
    assert reserving.entry.outcome == "advanced"

    paying = reply(reserving.state, topics.PAYMENT_PROCESSED, paid(), seconds=3)

    topic, update = only(paying)
    assert topic == topics.ORDER_UPDATED
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.ORDER_COMPLETED
    assert (paying.state.status, paying.state.deadline) == (SagaStatus.NOTIFYING, at(13))
    assert paying.entry.outcome == "completed"

    applied = reply(paying.state, topics.ORDER_STATUS_APPLIED, applied_as(COMPLETED), 4)

    assert applied.messages == []
    assert (applied.state.status, applied.state.deadline) == (SagaStatus.COMPLETED, None)
    assert applied.entry.outcome == "acknowledged"


def test_stock_unavailable_cancels_at_once_with_the_stock_reason() -> None:
    transition = reply(
        started(), topics.PRODUCT_RESERVED, reserved(StockStatus.UNAVAILABLE, INSUFFICIENT_STOCK)
    )

    topic, update = only(transition)
    assert topic == topics.ORDER_UPDATED
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.ORDER_CANCELLED
    assert update.reason == f"stock: {INSUFFICIENT_STOCK}"
    assert transition.state.status is SagaStatus.NOTIFYING
    assert transition.state.reason == f"stock: {INSUFFICIENT_STOCK}"
    applied = reply(transition.state, topics.ORDER_STATUS_APPLIED, applied_as(CANCELLED))
    assert (applied.state.status, applied.messages) == (SagaStatus.CANCELLED, [])


def test_a_refusal_without_a_reason_still_says_who_refused() -> None:
    transition = reply(started(), topics.PRODUCT_RESERVED, reserved(StockStatus.UNAVAILABLE))

    assert transition.state.reason == "stock: refused"


def test_payment_rejected_gives_the_stock_back_before_cancelling() -> None:
    rejected = reply(
        awaiting_payment(),
        topics.PAYMENT_PROCESSED,
        paid(PaymentStatus.PAYMENT_REJECTED, INSUFFICIENT_FUNDS),
    )
    topic, command = only(rejected)
    assert topic == topics.CANCEL_PRODUCT_RESERVATION
    assert isinstance(command, CancelProductReservation)
    assert (command.productID, command.quantity) == (3, 1)
    assert (rejected.state.status, rejected.state.step) == (SagaStatus.COMPENSATING, 0)
    assert rejected.state.deadline == at(11)

    acknowledged = reply(rejected.state, topics.PRODUCT_RESERVATION_CANCELLED, released())

    topic, update = only(acknowledged)
    assert topic == topics.ORDER_UPDATED
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.ORDER_CANCELLED
    assert update.reason == f"payment: {INSUFFICIENT_FUNDS}"
    assert acknowledged.state.status is SagaStatus.NOTIFYING


def test_stock_that_does_not_answer_is_compensated_then_the_order_cancelled() -> None:
    timed_out = deadline(started(), 30)
    topic, command = only(timed_out)
    assert topic == topics.CANCEL_PRODUCT_RESERVATION
    assert isinstance(command, CancelProductReservation)
    assert timed_out.state.reason == "stock did not answer within 30s"
    assert timed_out.entry.outcome == "timed-out"

    acknowledged = reply(timed_out.state, topics.PRODUCT_RESERVATION_CANCELLED, released(), 31)

    _, update = only(acknowledged)
    assert isinstance(update, OrderUpdated)
    assert update.status is OrderStatus.ORDER_CANCELLED
    assert update.reason == "stock did not answer within 30s"


def test_payment_that_does_not_answer_is_refunded_then_the_stock_given_back() -> None:
    sent: list[str] = []
    transition = deadline(awaiting_payment(), 21)
    sent += [t for t, _ in transition.messages]
    assert isinstance(transition.messages[0][1], CancelPayment)
    assert transition.state.reason == "payment did not answer within 20s"

    transition = reply(transition.state, topics.PAYMENT_CANCELLED, refunded(), 22)
    sent += [t for t, _ in transition.messages]
    assert (transition.state.status, transition.state.step) == (SagaStatus.COMPENSATING, 0)
    assert transition.entry.outcome == "compensated"

    transition = reply(transition.state, topics.PRODUCT_RESERVATION_CANCELLED, released(), 23)
    sent += [t for t, _ in transition.messages]

    assert sent == [
        topics.CANCEL_PAYMENT,
        topics.CANCEL_PRODUCT_RESERVATION,
        topics.ORDER_UPDATED,
    ]
    assert transition.state.status is SagaStatus.NOTIFYING
    _, update = transition.messages[0]
    assert isinstance(update, OrderUpdated)
    assert update.reason == "payment did not answer within 20s"


def test_an_approval_after_the_payment_timed_out_is_ignored() -> None:
    compensating = deadline(awaiting_payment(), 21).state

    late = reply(compensating, topics.PAYMENT_PROCESSED, paid(), 25)

    assert late.state == compensating
    assert late.messages == []
    assert late.entry.outcome == "ignored"
    assert "waiting for payment-cancelled" in (late.entry.note or "")


def test_a_reply_the_saga_does_not_wait_for_is_ignored() -> None:
    state = started()

    early = reply(state, topics.PAYMENT_PROCESSED, paid())

    assert (early.state, early.messages, early.entry.outcome) == (state, [], "ignored")


def test_a_deadline_not_yet_due_changes_nothing() -> None:
    state = started()

    early = deadline(state, 29.9)

    assert (early.state, early.messages, early.entry.outcome) == (state, [], "ignored")


def test_an_unacknowledged_compensation_is_sent_again_waiting_longer_up_to_a_cap() -> None:
    state = deadline(started(), 30).state  # cancel sent at 30 s, waits 10 s
    assert state.deadline is not None
    deadlines = [state.deadline]
    for _ in range(5):
        transition = on_deadline(PLACE_ORDER, state, deadlines[-1], TIMEOUTS)
        assert [t for t, _ in transition.messages] == [topics.CANCEL_PRODUCT_RESERVATION]
        assert transition.entry.outcome == "retried"
        state = transition.state
        assert state.deadline is not None
        deadlines.append(state.deadline)

    waits = [(b - a).total_seconds() for a, b in pairwise(deadlines)]
    assert waits == [20, 40, 80, 80, 80]
    assert (state.attempts, state.status, state.step) == (5, SagaStatus.COMPENSATING, 0)


@pytest.mark.parametrize("outcome", ["completed", "cancelled"])
def test_a_finished_saga_never_changes_again(outcome: str) -> None:
    state = awaiting_payment()
    if outcome == "completed":
        state = reply(state, topics.PAYMENT_PROCESSED, paid()).state
        state = reply(state, topics.ORDER_STATUS_APPLIED, applied_as(COMPLETED)).state
    else:
        state = reply(state, topics.PAYMENT_PROCESSED, paid(PaymentStatus.PAYMENT_REJECTED)).state
        state = reply(state, topics.PRODUCT_RESERVATION_CANCELLED, released()).state
        state = reply(state, topics.ORDER_STATUS_APPLIED, applied_as(CANCELLED)).state
    events = [
        reply(state, topics.PRODUCT_RESERVED, reserved()),
        reply(state, topics.PAYMENT_PROCESSED, paid()),
        reply(state, topics.PAYMENT_CANCELLED, refunded()),
        reply(state, topics.PRODUCT_RESERVATION_CANCELLED, released()),
        reply(state, topics.ORDER_STATUS_APPLIED, applied_as(COMPLETED)),
        on_deadline(PLACE_ORDER, state, at(10_000), TIMEOUTS),
    ]

    assert all(e.state == state and e.messages == [] for e in events)
    assert {e.entry.outcome for e in events} == {"ignored"}
    assert state.status.is_terminal
