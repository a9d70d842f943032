"""The outcome as a retriable step: order-updated is sent until the order service says
it applied it (order-status-applied), parks after as many sends as a compensation, and
is sent again when the saga is started a second time. Pure transitions, no I/O."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from uuid import UUID

from ordersaga.contracts import topics
from ordersaga.contracts.messages import (
    OrderCreated,
    OrderStatusApplied,
    OrderUpdated,
    PaymentProcessed,
    ProductReserved,
    WireMessage,
)
from ordersaga.contracts.statuses import OrderStatus, PaymentStatus, StockStatus
from ordersaga.saga.state import SagaState, SagaStatus, Transition
from ordersaga.saga.transitions import (
    on_deadline,
    on_reply,
    parked_because,
    retry,
    start,
    start_again,
)
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, order_data

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TIMEOUTS = {"reserve": 30.0, "payment": 20.0, "compensation": 10.0}
ORDER_ID = UUID("0c7d3f0e-2b1a-4d8e-9f60-5a4b3c2d1e0f")
ORDER = OrderCreated(
    orderID=ORDER_ID,
    userID=1,
    productID=1,
    quantity=1,
    amount=Decimal("20.00"),
    status=OrderStatus.ORDER_CREATED,
)
SAGA = replace(PLACE_ORDER, max_compensation_attempts=3)
OUT_OF_STOCK = "stock: out of stock"


def reply(state: SagaState, topic: str, message: WireMessage) -> Transition:
    return on_reply(SAGA, state, topic, message, NOW, TIMEOUTS)


def applied(status: OrderStatus = OrderStatus.ORDER_COMPLETED) -> WireMessage:
    return OrderStatusApplied(orderID=ORDER_ID, status=status)


def started() -> SagaState:
    return start(SAGA, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS).state


def completing() -> SagaState:
    """Stock reserved and payment approved: order-updated(ORDER_COMPLETED) sent once."""
    reserved = ProductReserved(
        orderID=ORDER_ID, userID=1, productID=1, quantity=1, status=StockStatus.AVAILABLE
    )
    paid = PaymentProcessed(
        orderID=ORDER_ID, userID=1, amount=Decimal("20.00"), status=PaymentStatus.PAYMENT_APPROVED
    )
    state = reply(started(), topics.PRODUCT_RESERVED, reserved).state
    return reply(state, topics.PAYMENT_PROCESSED, paid).state


def cancelling() -> SagaState:
    """Stock refused: order-updated(ORDER_CANCELLED) sent once."""
    refused = ProductReserved(
        orderID=ORDER_ID,
        userID=1,
        productID=1,
        quantity=1,
        status=StockStatus.UNAVAILABLE,
        reason="out of stock",
    )
    return reply(started(), topics.PRODUCT_RESERVED, refused).state


def updates(transition: Transition) -> list[OrderUpdated]:
    assert all(topic == topics.ORDER_UPDATED for topic, _ in transition.messages)
    return [m for _, m in transition.messages if isinstance(m, OrderUpdated)]


def unanswered(state: SagaState) -> tuple[SagaState, list[Transition]]:
    """Let every deadline pass unanswered until the saga parks."""
    seen: list[Transition] = []
    while state.status is SagaStatus.NOTIFYING:
        assert state.deadline is not None
        transition = on_deadline(SAGA, state, state.deadline, TIMEOUTS)
        seen.append(transition)
        state = transition.state
    return state, seen


def test_a_decided_saga_waits_for_the_order_to_apply_its_outcome() -> None:
    state = completing()

    assert (state.status, state.step, state.reason) == (SagaStatus.NOTIFYING, 2, None)
    assert state.deadline == NOW + timedelta(seconds=10)
    assert SAGA.step_name(state.step) == "update_order"


def test_an_unacknowledged_order_updated_is_sent_again_waiting_longer_each_time() -> None:
    state = completing()

    parked, seen = unanswered(state)

    assert [t.entry.outcome for t in seen] == ["retried", "retried", "parked"]
    sent = [u for t in seen for u in updates(t)]
    assert [u.status for u in sent] == [OrderStatus.ORDER_COMPLETED] * 2
    deadlines = [state.deadline, *(t.state.deadline for t in seen[:-1])]
    waits = [(b - a).total_seconds() for a, b in pairwise(deadlines) if a and b]
    assert waits == [20, 40]
    assert (parked.status, parked.deadline, parked.step) == (SagaStatus.PARKED, None, 2)
    assert parked_because(SAGA, parked) == "order-updated not acknowledged after 3 attempts"
    assert "parked until order-status-applied arrives" in (seen[-1].entry.note or "")


def test_a_cancellation_is_sent_again_with_its_reason() -> None:
    state = cancelling()
    transition = on_deadline(SAGA, state, NOW + timedelta(seconds=10), TIMEOUTS)

    [update] = updates(transition)

    assert (update.status, update.reason) == (OrderStatus.ORDER_CANCELLED, OUT_OF_STOCK)
    assert transition.state.status is SagaStatus.NOTIFYING


def test_the_acknowledgement_finishes_the_saga_with_its_outcome() -> None:
    done = reply(completing(), topics.ORDER_STATUS_APPLIED, applied())
    cancelled = reply(
        cancelling(), topics.ORDER_STATUS_APPLIED, applied(OrderStatus.ORDER_CANCELLED)
    )

    assert (done.state.status, done.state.deadline, done.messages) == (
        SagaStatus.COMPLETED,
        None,
        [],
    )
    assert (cancelled.state.status, cancelled.state.reason) == (
        SagaStatus.CANCELLED,
        OUT_OF_STOCK,
    )
    assert done.entry.outcome == cancelled.entry.outcome == "acknowledged"


def test_a_late_acknowledgement_finishes_a_parked_saga() -> None:
    parked, _ = unanswered(completing())

    done = reply(parked, topics.ORDER_STATUS_APPLIED, applied())

    assert (done.state.status, done.messages) == (SagaStatus.COMPLETED, [])
    assert done.entry.from_status is SagaStatus.PARKED


def test_an_operator_retry_announces_the_outcome_again() -> None:
    parked, _ = unanswered(cancelling())

    retried = retry(SAGA, parked, NOW + timedelta(hours=1), TIMEOUTS)

    [update] = updates(retried)
    assert (update.status, update.reason) == (OrderStatus.ORDER_CANCELLED, OUT_OF_STOCK)
    assert (retried.state.status, retried.state.attempts) == (SagaStatus.NOTIFYING, 0)
    assert retried.state.deadline == NOW + timedelta(hours=1, seconds=10)


def test_an_acknowledgement_the_saga_does_not_wait_for_is_ignored() -> None:
    state = started()

    early = reply(state, topics.ORDER_STATUS_APPLIED, applied())

    assert (early.state, early.messages, early.entry.outcome) == (state, [], "ignored")


def test_a_second_start_of_a_running_saga_sends_nothing() -> None:
    state = started()

    again = start_again(SAGA, state)

    assert (again.state, again.messages, again.entry.outcome) == (state, [], "ignored")


def test_a_second_start_of_a_decided_or_finished_saga_sends_its_outcome_again() -> None:
    notifying = completing()
    finished = reply(cancelling(), topics.ORDER_STATUS_APPLIED, applied()).state

    for state, status in (
        (notifying, OrderStatus.ORDER_COMPLETED),
        (finished, OrderStatus.ORDER_CANCELLED),
    ):
        again = start_again(SAGA, state)
        [update] = updates(again)
        assert update.status is status
        assert (again.state, again.entry.outcome) == (state, "resent")


def test_a_saga_finished_before_outcomes_were_acknowledged_still_sends_its_outcome() -> None:
    # Finished sagas stored before the announcement was a step kept their last step.
    legacy = replace(started(), status=SagaStatus.COMPLETED, step=1, deadline=None)

    [update] = updates(start_again(SAGA, legacy))

    assert update.status is OrderStatus.ORDER_COMPLETED
