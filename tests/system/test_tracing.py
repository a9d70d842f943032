"""One trace per saga, across the four services, in the embedded system."""

from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.observability.tracing import Tracing, new_traceparent, tracing_to
from ordersaga.runtime.embedded import EmbeddedSystem
from tests.auth_support import operator_headers
from tests.support import until
from tests.system.conftest import api_of, embedded
from tests.system.test_lost_messages import LosingBroker
from tests.traces import COMPLETED_FLOW, UNAFFORDABLE_FLOW, SpanView, chain


def view(span: ReadableSpan) -> SpanView:
    assert span.context is not None
    service = str(span.resource.attributes["service.name"]).removeprefix("ordersaga-")
    saga = span.attributes.get("ordersaga.saga_id") if span.attributes else None
    return SpanView(
        service=service,
        name=span.name,
        trace_id=f"{span.context.trace_id:032x}",
        span_id=f"{span.context.span_id:016x}",
        parent_id=f"{span.parent.span_id:016x}" if span.parent else None,
        saga_id=str(saga) if saga else None,
    )


def of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[SpanView]:
    return [v for v in map(view, exporter.get_finished_spans()) if v.trace_id == trace_id]


def trace_of(exporter: InMemorySpanExporter, order_id: str) -> str:
    """The trace of the spans that name saga ``order_id``; fails unless there is one."""
    traces = {v.trace_id for v in map(view, exporter.get_finished_spans()) if v.saga_id == order_id}
    assert len(traces) == 1, f"saga {order_id} is in {len(traces)} traces"
    return traces.pop()


async def traced_flow(
    exporter: InMemorySpanExporter, order_id: str, flow: Sequence[tuple[str, str]] | int
) -> list[SpanView]:
    """Wait for every span of ``order_id``'s saga (those of ``flow``, or that many), then
    its one trace's spans."""
    trace_id = trace_of(exporter, order_id)
    count = flow if isinstance(flow, int) else len(flow)
    await until(lambda: len(of_trace(exporter, trace_id)) >= count, what="every span")
    return of_trace(exporter, trace_id)


def recording(exporter: InMemorySpanExporter) -> Callable[[str], Tracing]:
    """Each service's spans to ``exporter``, as each ends."""

    def tracing(service: str) -> Tracing:
        return tracing_to([exporter], service, "1", batch=False)

    return tracing


async def test_each_order_is_one_trace_through_the_four_services(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with embedded(tmp_path, tracing=recording(exporter)) as (system, api):
        completed = await api.place(user=1, product=1, quantity=1)
        cancelled = await api.place(user=1, product=3, quantity=3)  # 150 > 100
        assert (await api.wait(completed["orderID"]))["status"] == "ORDER_COMPLETED"
        assert (await api.wait(cancelled["orderID"]))["status"] == "ORDER_CANCELLED"
        assert await system.wait_until_quiet()
        completed_spans = await traced_flow(exporter, completed["orderID"], COMPLETED_FLOW)
        cancelled_spans = await traced_flow(exporter, cancelled["orderID"], UNAFFORDABLE_FLOW)
    assert chain(completed_spans) == COMPLETED_FLOW
    assert chain(cancelled_spans) == UNAFFORDABLE_FLOW
    assert {s.service for s in completed_spans} == {"order", "orchestrator", "stock", "payment"}
    assert completed_spans[0].trace_id != completed["orderID"].replace("-", "")


async def test_an_order_posted_with_a_traceparent_joins_the_callers_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    caller = new_traceparent()
    _, caller_trace, caller_span, _ = caller.split("-")
    async with embedded(tmp_path, tracing=recording(exporter)) as (system, _):
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ordersaga", headers=operator_headers()
        ) as http:
            answer = await http.post(
                "/api/v1/orders",
                json={"userID": 1, "productID": 1, "quantity": 1},
                headers={"traceparent": caller},
            )
        assert answer.status_code == 201
        assert await system.wait_until_quiet()
        spans = await traced_flow(exporter, answer.json()["orderID"], COMPLETED_FLOW)
    assert {s.trace_id for s in spans} == {caller_trace}
    assert chain(spans) == COMPLETED_FLOW
    [root] = [s for s in spans if s.name == "POST /api/v1/orders"]
    assert root.parent_id == caller_span


async def test_without_an_exporter_a_saga_still_carries_one_traceparent(tmp_path: Path) -> None:
    """Tracing off: nothing recorded, but the client's trace travels on every message."""
    caller = new_traceparent()
    async with embedded(tmp_path) as (system, _):
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ordersaga", headers=operator_headers()
        ) as http:
            answer = await http.post(
                "/api/v1/orders",
                json={"userID": 1, "productID": 1, "quantity": 1},
                headers={"traceparent": caller},
            )
        assert await system.wait_until_quiet()
        order_id = answer.json()["orderID"]
        records = [
            r
            for topic in ("order-created", "reserve-product", "order-updated")
            for r in system.broker.records(topic)
            if r.key == order_id
        ]
    assert [r.headers["traceparent"] for r in records] == [caller] * 3


async def test_a_deadline_is_a_span_of_its_sagas_trace(tmp_path: Path) -> None:
    """The stock's answer is lost: the deadline's span, the child of the span that
    started the saga, is the parent of the compensation that follows."""
    exporter = InMemorySpanExporter()
    broker = LosingBroker(topics.PRODUCT_RESERVED)
    settings = Settings(reserve_timeout=0.5)
    system = EmbeddedSystem(tmp_path, settings, broker=broker, tracing=recording(exporter))
    try:
        async with system, api_of(system) as api:
            placed = await api.place(user=1, product=1, quantity=1)
            assert (await api.wait(placed["orderID"]))["status"] == "ORDER_CANCELLED"
            assert await system.wait_until_quiet()
            # Up to the lost answer 6 (its publish the last), then the 9 below.
            spans = await traced_flow(exporter, placed["orderID"], 15)
    finally:
        await broker.close()
    by_id = {s.span_id: s for s in spans}
    [deadline] = [s for s in spans if s.name == "saga deadline"]
    assert deadline.service == "orchestrator"
    assert deadline.parent_id is not None
    assert by_id[deadline.parent_id].name == "process order-created"
    assert chain([deadline, *descendants(spans, deadline)]) == [
        ("orchestrator", "saga deadline"),
        ("orchestrator", "publish cancel-product-reservation"),
        ("stock", "process cancel-product-reservation"),
        ("stock", "publish product-reservation-cancelled"),
        ("orchestrator", "process product-reservation-cancelled"),
        ("orchestrator", "publish order-updated"),
        ("order", "process order-updated"),
        ("order", "publish order-status-applied"),
        ("orchestrator", "process order-status-applied"),
    ]


def descendants(spans: Sequence[SpanView], top: SpanView) -> list[SpanView]:
    found, frontier = [], [top.span_id]
    while frontier:
        below = [s for s in spans if s.parent_id in frontier]
        found += below
        frontier = [s.span_id for s in below]
    return found


async def test_reads_are_spans_named_by_route_and_probes_are_not_traced(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with embedded(tmp_path, tracing=recording(exporter)) as (system, api):
        placed = await api.place(user=1, product=1, quantity=1)
        await api.get(placed["orderID"])
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ordersaga", headers=operator_headers()
        ) as http:
            assert (await http.get("/healthz")).status_code == 200
        assert await system.wait_until_quiet()
    names = [s.name for s in exporter.get_finished_spans()]
    assert "GET /api/v1/orders/{orderID}" in names
    assert not [n for n in names if "healthz" in n or n == "GET"]
