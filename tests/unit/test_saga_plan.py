"""What a live saga will still do and what an operator's cancel does, read from the
definition (place-order version 2, with a retriable step after the pivot); the timeline
of a history; the admin API's loopback rule."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import get_args
from uuid import uuid4

import pytest

from ordersaga.runtime.admin import AdminNotLoopback, check_loopback
from ordersaga.saga.plan import compensation_plan, steps_ahead
from ordersaga.saga.rows import HistoryRecord, Origin, SentMessage
from ordersaga.saga.search import SORT_KEYS
from ordersaga.saga.state import HistoryEntry, SagaState, SagaStatus
from ordersaga.saga.transitions import cancel
from ordersaga.services.orchestrator.admin.routers.sagas import SortKey
from ordersaga.services.orchestrator.place_order import PROCESS_PAYMENT, RESERVE_STOCK
from ordersaga.services.orchestrator.timeline import timeline
from tests.shipping import ORDER_SHIPPED, SHIP, SHIP_ORDER, WITH_SHIPPING

NOW = datetime(2024, 5, 1, tzinfo=UTC)
DUE = NOW + timedelta(seconds=5)
TIMEOUTS = {"reserve": 5.0, "payment": 5.0, "compensation": 2.0, "ship": 3.0}
DATA = {"orderID": str(uuid4()), "userID": 1, "productID": 1, "quantity": 1, "amount": "20.00"}


def at(step: int, status: SagaStatus = SagaStatus.RUNNING, reason: str | None = None) -> SagaState:
    deadline = None if status in (SagaStatus.PARKED, SagaStatus.COMPLETED) else DUE
    return SagaState(
        DATA["orderID"], status, step, DATA, deadline, reason=reason, definition_version=2
    )


def ahead(state: SagaState) -> list[tuple[str, str, str, datetime | None]]:
    return [
        (s.name, s.party, s.kind, s.deadline) for s in steps_ahead(WITH_SHIPPING, state, "order")
    ]


def plan(state: SagaState) -> list[tuple[str, str, str]]:
    return [(c.name, c.party, c.topic) for c in compensation_plan(WITH_SHIPPING, state)]


UNDO_RESERVE = (RESERVE_STOCK.name, "stock", RESERVE_STOCK.compensation_topic)
UNDO_PAYMENT = (PROCESS_PAYMENT.name, "payment", PROCESS_PAYMENT.compensation_topic)
OUTCOME = (WITH_SHIPPING.outcome_name, "order", "outcome")


def test_a_saga_before_its_pivot_has_every_step_ahead_and_would_undo_the_one_under_way() -> None:
    assert ahead(at(0)) == [
        (RESERVE_STOCK.name, "stock", "compensatable", DUE),
        (PROCESS_PAYMENT.name, "payment", "pivot", None),
        (SHIP.name, "shipping", "retriable", None),
        (*OUTCOME, None),
    ]
    assert plan(at(0)) == [UNDO_RESERVE]
    assert plan(at(1)) == [UNDO_PAYMENT, UNDO_RESERVE]


def test_past_the_pivot_or_finished_nothing_would_be_compensated() -> None:
    assert ahead(at(2)) == [(SHIP.name, "shipping", "retriable", DUE), (*OUTCOME, None)]
    assert plan(at(2)) == []
    assert plan(at(2, SagaStatus.PARKED)) == []
    announcing = at(WITH_SHIPPING.outcome_step, SagaStatus.NOTIFYING)
    assert ahead(announcing) == [(*OUTCOME, DUE)]
    assert plan(announcing) == []
    assert ahead(at(3, SagaStatus.COMPLETED)) == plan(at(3, SagaStatus.COMPLETED)) == []


def test_a_compensating_saga_goes_on_from_the_compensation_under_way() -> None:
    compensating = at(1, SagaStatus.COMPENSATING, "payment did not answer")
    assert ahead(compensating) == [(*OUTCOME, None)]
    assert plan(compensating) == [UNDO_PAYMENT, UNDO_RESERVE]
    assert plan(replace(compensating, status=SagaStatus.PARKED, step=0)) == [UNDO_RESERVE]


def test_an_operator_cancel_compensates_before_the_pivot_only() -> None:
    cancelled = cancel(WITH_SHIPPING, at(0), NOW, TIMEOUTS, "customer called")
    assert cancelled.state.status is SagaStatus.COMPENSATING
    assert cancelled.state.reason == "cancelled by an operator: customer called"
    assert [topic for topic, _ in cancelled.messages] == [RESERVE_STOCK.compensation_topic]
    assert cancelled.entry.event == "operator-cancel"
    for state in (at(1), at(2), at(0, SagaStatus.COMPENSATING), at(3, SagaStatus.COMPLETED)):
        refused = cancel(WITH_SHIPPING, state, NOW, TIMEOUTS, "too late")
        assert refused.entry.outcome == "ignored" and refused.messages == []
        assert "only a RUNNING saga before its pivot" in (refused.entry.note or "")


def test_the_timeline_puts_each_event_in_its_lane_and_shows_a_late_reply_ignored() -> None:
    sent = SentMessage(SHIP_ORDER, "m-ship")
    history = [
        HistoryRecord(
            1,
            NOW,
            HistoryEntry(
                "test-order-shipped", "advanced", SagaStatus.RUNNING, SagaStatus.NOTIFYING, 3
            ),
            "m-in",
            Origin(ORDER_SHIPPED, 4, 17, "m-ship-before"),
            (sent,),
            DUE,
        ),
        HistoryRecord(
            2,
            DUE,
            HistoryEntry(ORDER_SHIPPED, "ignored", SagaStatus.NOTIFYING, SagaStatus.NOTIFYING, 3),
            "m-late",
            Origin(ORDER_SHIPPED, 4, 18, "m-ship"),
        ),
    ]
    events = timeline(history, [], WITH_SHIPPING)
    assert [(e.kind, e.service, e.topic) for e in events] == [
        ("message_in", "shipping", ORDER_SHIPPED),
        ("transition", "orchestrator", None),
        ("message_out", "shipping", SHIP_ORDER),
        ("deadline_set", "orchestrator", None),
        ("message_in", "shipping", ORDER_SHIPPED),
        ("late_reply_ignored", "orchestrator", ORDER_SHIPPED),
    ]
    assert (events[0].partition, events[0].offset, events[0].causation_id) == (
        4,
        17,
        "m-ship-before",
    )
    assert events[0].step == RESERVE_STOCK.name  # the step the saga was at when it came
    assert events[2].message_id == "m-ship" and events[2].causation_id == "m-in"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_the_admin_api_listens_on_loopback(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "admin.example.com", ""])
def test_the_admin_api_refuses_an_address_other_hosts_reach(host: str) -> None:
    with pytest.raises(AdminNotLoopback, match="not a loopback address"):
        check_loopback(host)


def test_the_api_offers_every_sort_key_the_search_has() -> None:
    assert set(get_args(SortKey)) == set(SORT_KEYS)
