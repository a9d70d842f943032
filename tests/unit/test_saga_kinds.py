"""Step kinds and versions of a definition: the rules a definition must follow, and a
retriable step's transitions in place-order version 2 (tests/shipping.py)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ordersaga.saga.definition import StepKind
from ordersaga.saga.registry import MissingSagaVersions, SagaRegistry, UnknownSagaVersion
from ordersaga.saga.state import SagaState, SagaStatus
from ordersaga.saga.transitions import on_deadline, on_reply, retry
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, PROCESS_PAYMENT, RESERVE_STOCK
from tests.shipping import ORDER_SHIPPED, SHIP, SHIP_ORDER, WITH_SHIPPING, OrderShipped, ShipOrder

NOW = datetime(2024, 5, 1, tzinfo=UTC)
TIMEOUTS = {"reserve": 5.0, "payment": 5.0, "compensation": 2.0, "ship": 3.0}
SAGA = replace(WITH_SHIPPING, max_compensation_attempts=3)
ORDER_ID = uuid4()
DATA = {"orderID": str(ORDER_ID), "userID": 1, "productID": 1, "quantity": 1, "amount": "20.00"}


def shipping() -> SagaState:
    """A v2 saga past its pivot, its ship-order just sent."""
    return SagaState(
        saga_id=str(ORDER_ID),
        status=SagaStatus.RUNNING,
        step=2,
        data=DATA,
        deadline=NOW + timedelta(seconds=3),
        definition_version=2,
    )


@pytest.mark.parametrize(
    "kinds",
    [
        (StepKind.PIVOT, StepKind.COMPENSATABLE),
        (StepKind.PIVOT, StepKind.PIVOT),
        (StepKind.RETRIABLE, StepKind.PIVOT),
        (StepKind.COMPENSATABLE, StepKind.RETRIABLE),
    ],
)
def test_a_definition_out_of_the_order_of_kinds_is_refused(kinds: tuple[StepKind, ...]) -> None:
    steps = [replace(RESERVE_STOCK, kind=k) if k is not StepKind.RETRIABLE else SHIP for k in kinds]
    with pytest.raises(ValueError, match="compensatable steps, then at most one pivot"):
        replace(PLACE_ORDER, steps=steps)


def test_a_retriable_step_has_no_compensation_and_the_others_need_one() -> None:
    with pytest.raises(ValueError, match="retriable: it has no compensation"):
        replace(PROCESS_PAYMENT, kind=StepKind.RETRIABLE)
    with pytest.raises(ValueError, match="give its compensation_topic"):
        replace(SHIP, kind=StepKind.PIVOT)


def test_a_deadline_sends_the_retriable_command_again_with_backoff_then_parks() -> None:
    state = shipping()
    first = on_deadline(SAGA, state, NOW + timedelta(seconds=3), TIMEOUTS)
    assert first.entry.outcome == "retried"
    assert first.messages == [(SHIP_ORDER, ShipOrder(orderID=ORDER_ID, productID=1, quantity=1))]
    assert first.state.deadline == NOW + timedelta(seconds=3 + 6)  # twice the step's timeout
    second = on_deadline(SAGA, first.state, NOW + timedelta(seconds=9), TIMEOUTS)
    parked = on_deadline(SAGA, second.state, NOW + timedelta(seconds=30), TIMEOUTS)
    assert (parked.state.status, parked.messages) == (SagaStatus.PARKED, [])
    assert parked.state.step == 2 and parked.state.reason is None


def test_a_refusal_waits_for_the_deadline_and_a_late_success_moves_a_parked_saga_on() -> None:
    refused = on_reply(
        SAGA,
        shipping(),
        ORDER_SHIPPED,
        OrderShipped(orderID=ORDER_ID, shipped=False),
        NOW,
        TIMEOUTS,
    )
    assert (refused.entry.outcome, refused.state, refused.messages) == ("refused", shipping(), [])
    parked = replace(shipping(), status=SagaStatus.PARKED, deadline=None, attempts=2)
    done = on_reply(
        SAGA, parked, ORDER_SHIPPED, OrderShipped(orderID=ORDER_ID, shipped=True), NOW, TIMEOUTS
    )
    assert done.entry.outcome == "completed"
    assert done.state.status is SagaStatus.NOTIFYING


def test_an_operator_retry_of_a_parked_retriable_step_commands_it_again() -> None:
    parked = replace(shipping(), status=SagaStatus.PARKED, deadline=None, attempts=2)
    resumed = retry(SAGA, parked, NOW, TIMEOUTS)
    assert resumed.state.status is SagaStatus.RUNNING
    assert resumed.state.attempts == 0
    assert resumed.state.deadline == NOW + timedelta(seconds=3)
    assert [t for t, _ in resumed.messages] == [SHIP_ORDER]


def test_a_registry_runs_old_versions_and_starts_new_sagas_on_the_current_one() -> None:
    registry = SagaRegistry.of(PLACE_ORDER, WITH_SHIPPING)
    assert registry.newest is WITH_SHIPPING
    assert registry.get(1) is PLACE_ORDER
    assert SagaRegistry.of(PLACE_ORDER, WITH_SHIPPING, current=1).newest is PLACE_ORDER
    assert ORDER_SHIPPED in registry.topics and registry.reply_models == {
        ORDER_SHIPPED: OrderShipped
    }
    with pytest.raises(UnknownSagaVersion, match="version 3 is not registered"):
        registry.get(3)
    with pytest.raises(ValueError, match="registered twice"):
        SagaRegistry.of(PLACE_ORDER, PLACE_ORDER)
    registry.check({1: 5, 2: 1, 7: 0})
    with pytest.raises(MissingSagaVersions, match="3 unfinished place-order sagas of version 1"):
        SagaRegistry.of(WITH_SHIPPING).check({1: 3, 2: 1})
