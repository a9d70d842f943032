"""What a saga's transitions count: started, finished by outcome and reason class, reply
latency per step, deadlines fired, compensations sent and acknowledged."""

from datetime import datetime

from prometheus_client import CollectorRegistry

from ordersaga.contracts import topics
from ordersaga.contracts.statuses import OrderStatus, StockStatus
from ordersaga.observability.metrics import Metrics
from ordersaga.observability.recorders import SagaMetrics
from ordersaga.saga.metered import reason_class, record
from ordersaga.saga.state import SagaState, Transition
from ordersaga.saga.transitions import on_deadline, on_reply, start
from ordersaga.services.orchestrator.place_order import PLACE_ORDER, order_data
from tests.unit.test_saga_transitions import (
    NOW,
    ORDER,
    ORDER_ID,
    TIMEOUTS,
    applied_as,
    at,
    released,
    reserved,
)

PROCESS = {"service": "orchestrator", "replica": "0"}


class Saga:
    """One saga driven through transitions, each recorded as the runner records it."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self._recorder = SagaMetrics(self.metrics, "orchestrator", "0")
        self.state: SagaState | None = None
        self.changed_at = NOW

    def apply(self, transition: Transition, when: datetime) -> None:
        record(self._recorder, PLACE_ORDER, self.state, transition, when, NOW, self.changed_at)
        if self.state is None or transition.state != self.state:
            self.changed_at = when
        self.state = transition.state

    def value(self, name: str, **labels: str) -> float:
        registry: CollectorRegistry = self.metrics.registry
        return registry.get_sample_value(name, {**PROCESS, **labels}) or 0.0


def test_a_reserve_that_times_out_counts_the_deadline_and_the_compensation() -> None:
    saga = Saga()
    saga.apply(start(PLACE_ORDER, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS), NOW)
    assert saga.state is not None
    saga.apply(on_deadline(PLACE_ORDER, saga.state, at(31), TIMEOUTS), at(31))
    saga.apply(on_deadline(PLACE_ORDER, saga.state, at(42), TIMEOUTS), at(42))  # sent again
    late = on_reply(PLACE_ORDER, saga.state, topics.PRODUCT_RESERVED, reserved(), at(43), TIMEOUTS)
    saga.apply(late, at(43))  # ignored: counts nothing
    acked = on_reply(
        PLACE_ORDER, saga.state, topics.PRODUCT_RESERVATION_CANCELLED, released(), at(44), TIMEOUTS
    )
    saga.apply(acked, at(44))
    done = on_reply(
        PLACE_ORDER,
        saga.state,
        topics.ORDER_STATUS_APPLIED,
        applied_as(OrderStatus.ORDER_CANCELLED),
        at(45),
        TIMEOUTS,
    )
    saga.apply(done, at(45))

    assert saga.value("ordersaga_sagas_started_total") == 1
    assert saga.value("ordersaga_saga_deadlines_fired_total", result="timed_out") == 1
    assert saga.value("ordersaga_saga_deadlines_fired_total", result="resent") == 1
    assert saga.value("ordersaga_saga_compensations_sent_total", step="reserve_stock") == 2
    sent_back = saga.value("ordersaga_saga_compensations_acknowledged_total", step="reserve_stock")
    assert sent_back == 1
    assert saga.value("ordersaga_saga_reply_latency_seconds_count", step="reserve_stock") == 0
    finished = {"outcome": "cancelled", "reason_class": "stock_timeout"}
    assert saga.value("ordersaga_sagas_finished_total", **finished) == 1
    assert saga.value("ordersaga_saga_duration_seconds_sum", outcome="cancelled") == 45


def test_a_reply_counts_its_latency_from_the_command() -> None:
    saga = Saga()
    saga.apply(start(PLACE_ORDER, str(ORDER_ID), order_data(ORDER), NOW, TIMEOUTS), NOW)
    assert saga.state is not None
    no = reserved(StockStatus.UNAVAILABLE, "insufficient stock")
    refused = on_reply(PLACE_ORDER, saga.state, topics.PRODUCT_RESERVED, no, at(2), TIMEOUTS)
    saga.apply(refused, at(2))
    assert saga.value("ordersaga_saga_reply_latency_seconds_sum", step="reserve_stock") == 2
    assert saga.value("ordersaga_saga_compensations_sent_total", step="reserve_stock") == 0


def test_reason_classes_are_bounded() -> None:
    assert reason_class(PLACE_ORDER, None) == "none"
    assert reason_class(PLACE_ORDER, "stock: unknown product 9") == "stock_refused"
    assert reason_class(PLACE_ORDER, "payment: insufficient funds") == "payment_refused"
    assert reason_class(PLACE_ORDER, "payment did not answer within 30s") == "payment_timeout"
    assert reason_class(PLACE_ORDER, "stock did not answer within 1.5s") == "stock_timeout"
    assert reason_class(PLACE_ORDER, "an operator cancelled it") == "other"
