"""Traces of the real stack: each order is one trace across the four processes, sent
over OTLP/HTTP to a receiver in the test."""

import httpx

from ordersaga.observability.tracing import new_traceparent
from tests.auth_support import operator_headers
from tests.realstack.otlp_receiver import Receiver, otlp_receiver
from tests.realstack.stack import Stack
from tests.realstack.test_real_stack import wait_all
from tests.support import until_sync
from tests.traces import COMPLETED_FLOW, UNAFFORDABLE_FLOW, SpanView, chain


def saga_trace(receiver: Receiver, order_id: str, flow: list[tuple[str, str]]) -> list[SpanView]:
    """The spans of ``order_id``'s trace, once all of ``flow``'s have arrived."""

    def trace_id() -> str | None:
        traces = {s.trace_id for s in receiver.spans() if s.saga_id == order_id}
        assert len(traces) <= 1, f"saga {order_id} is in {len(traces)} traces"
        return traces.pop() if traces else None

    def arrived() -> bool:
        found = trace_id()
        return found is not None and len(
            [s for s in receiver.spans() if s.trace_id == found]
        ) >= len(flow)

    until_sync(arrived, timeout=60, what=f"the spans of saga {order_id}", interval=0.2)
    return [s for s in receiver.spans() if s.trace_id == trace_id()]


def test_each_order_is_one_trace_across_the_four_processes(stack: Stack) -> None:
    with otlp_receiver() as receiver:
        stack.env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds: export soon after
            }
        )
        stack.start_all()
        caller = new_traceparent()
        _, caller_trace, caller_span, _ = caller.split("-")
        with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
            body = {"userID": 1, "productID": 1, "quantity": 1}
            completed = http.post("/api/v1/orders", json=body).json()["orderID"]
            joined = http.post("/api/v1/orders", json=body, headers={"traceparent": caller}).json()[
                "orderID"
            ]
            unaffordable = {"userID": 1, "productID": 3, "quantity": 3}  # 150 > 100
            cancelled = http.post("/api/v1/orders", json=unaffordable).json()["orderID"]
            orders = wait_all(http, [completed, joined, cancelled])
        assert orders[completed]["status"] == "ORDER_COMPLETED"
        assert orders[joined]["status"] == "ORDER_COMPLETED"
        assert orders[cancelled]["status"] == "ORDER_CANCELLED"
        completed_spans = saga_trace(receiver, completed, COMPLETED_FLOW)
        joined_spans = saga_trace(receiver, joined, COMPLETED_FLOW)
        cancelled_spans = saga_trace(receiver, cancelled, UNAFFORDABLE_FLOW)

    assert chain(completed_spans) == COMPLETED_FLOW
    assert chain(cancelled_spans) == UNAFFORDABLE_FLOW
    assert chain(joined_spans) == COMPLETED_FLOW
    assert {s.service for s in completed_spans} == {"order", "orchestrator", "stock", "payment"}
    assert (
        len({completed_spans[0].trace_id, joined_spans[0].trace_id, cancelled_spans[0].trace_id})
        == 3
    )
    assert joined_spans[0].trace_id == caller_trace
    [root] = [s for s in joined_spans if s.name == "POST /api/v1/orders"]
    assert root.parent_id == caller_span
