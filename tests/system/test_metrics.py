"""The metrics of the embedded system add up to what happened: orders placed with a known
split of outcomes, a poison message, a redelivered one, and a few bad requests."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.observability.serving import serve_metrics
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.tools.scrape import Scrape, parse
from tests.auth_support import operator_headers

SETTINGS = Settings(metrics_interval=0.05, metrics_port=0)

# (user, product, quantity) → outcome and reason class. Placed one after another, each
# finished before the next, so the stock and balances each sees are known.
COMPLETING = [(3, 1, 1)] * 3  # 20 each of user 3's 200
OUT_OF_STOCK = [(3, 3, 4)] * 2  # 3 of product 3 on hand
UNAFFORDABLE = [(1, 3, 3)]  # 150 > user 1's 100: reserved, refused, released
ORDERS = COMPLETING + OUT_OF_STOCK + UNAFFORDABLE


@asynccontextmanager
async def running(data_dir: Path) -> AsyncIterator[tuple[EmbeddedSystem, httpx.AsyncClient]]:
    system = EmbeddedSystem(data_dir, SETTINGS)
    async with system:
        transport = httpx.ASGITransport(app=system.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ordersaga", headers=operator_headers()
        ) as http:
            yield system, http


async def metrics_of(http: httpx.AsyncClient) -> Scrape:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse("/metrics", response.text)


async def settled(http: httpx.AsyncClient, injected: int, timeout: float = 30.0) -> Scrape:
    """The metrics once the ``injected`` records are consumed (as duplicates or poison),
    the gauges read from the databases have caught up with a quiet system (every outbox
    empty, no saga unfinished) and no consumer lags."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await metrics_of(http)
        waiting = found.select("ordersaga_outbox_rows_waiting")
        consumed = found.select("ordersaga_messages_consumed_total")
        idle = (
            len(waiting) == 4
            and all(s.value == 0 for s in waiting)
            and found.total("ordersaga_sagas_unfinished") == 0
            and sum(s.value for s in consumed if s.labels["result"] != "handled") == injected
            and found.total("ordersaga_consumer_lag") == 0
        )
        if idle or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def place_all(system: EmbeddedSystem, http: httpx.AsyncClient) -> list[str]:
    ids = []
    for user, product, quantity in ORDERS:
        body = {"userID": user, "productID": product, "quantity": quantity}
        answer = await http.post("/api/v1/orders", json=body)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["orderID"])
        assert await system.wait_until_quiet(timeout=30)
    return ids


async def test_the_scraped_metrics_count_what_happened(tmp_path: Path) -> None:
    async with running(tmp_path) as (system, http):
        ids = await place_all(system, http)
        for order_id in ids:
            assert (await http.get(f"/api/v1/orders/{order_id}")).status_code == 200
        unknown = "00000000-0000-4000-8000-000000000000"
        assert (await http.get(f"/api/v1/orders/{unknown}")).status_code == 404
        bad = await http.post("/api/v1/orders", json={"userID": 1, "productID": 1, "x": 1})
        assert bad.status_code == 422
        # A poison message, and a second delivery of an order-updated already handled.
        producer = system.broker.producer()
        poison = OutgoingMessage(topics.RESERVE_PRODUCT, "k", b"not json", {"message-id": "p1"})
        [first] = system.broker.records(topics.ORDER_UPDATED)[:1]
        again = OutgoingMessage(first.topic, first.key, first.value, first.headers)
        await producer.send_batch([poison, again])
        found = await settled(http, injected=2)

    def consumed(topic: str, group: str, result: str = "handled") -> float:
        return found.total(
            "ordersaga_messages_consumed_total", topic=topic, group=group, result=result
        )

    orchestrator = {"service": "orchestrator", "replica": "0"}
    assert found.total("ordersaga_sagas_started_total", **orchestrator) == len(ORDERS)
    finished = {
        (s.labels["outcome"], s.labels["reason_class"]): s.value
        for s in found.select("ordersaga_sagas_finished_total", **orchestrator)
    }
    assert finished == {
        ("completed", "none"): 3,
        ("cancelled", "stock_refused"): 2,
        ("cancelled", "payment_refused"): 1,
    }
    assert found.total("ordersaga_saga_duration_seconds_count") == len(ORDERS)
    assert found.total("ordersaga_saga_duration_seconds_count", outcome="completed") == 3
    assert found.total("ordersaga_saga_reply_latency_seconds_count", step="reserve_stock") == 6
    assert found.total("ordersaga_saga_reply_latency_seconds_count", step="process_payment") == 4
    assert found.total("ordersaga_saga_compensations_sent_total", step="reserve_stock") == 1
    assert found.total("ordersaga_saga_compensations_acknowledged_total", step="reserve_stock") == 1
    assert found.total("ordersaga_saga_deadlines_fired_total") == 0
    # Series that have not counted anything yet are there at 0, so rate() sees their first
    # increase: each deadline result, the payment's compensation, each group's retries.
    fired = found.select("ordersaga_saga_deadlines_fired_total", **orchestrator)
    assert {s.labels["result"]: s.value for s in fired} == dict.fromkeys(
        ("timed_out", "resent", "parked", "failed"), 0.0
    )
    for name in ("sent", "acknowledged"):
        undone = found.select(f"ordersaga_saga_compensations_{name}_total", **orchestrator)
        assert {s.labels["step"]: s.value for s in undone} == {
            "reserve_stock": 1.0,
            "process_payment": 0.0,
        }
    retries = found.select("ordersaga_consumer_retries_total", service="payment")
    assert {(s.labels["group"], s.labels["fault"]): s.value for s in retries} == {
        ("payment-service", "transient"): 0.0,
        ("payment-service", "unexpected"): 0.0,
    }
    assert found.total("ordersaga_sagas_parked") == 0
    assert found.total("ordersaga_sagas_unfinished") == 0
    assert found.total("ordersaga_sagas_overdue") == 0

    assert consumed(topics.ORDER_CREATED, "orchestrator-service") == 6
    assert consumed(topics.RESERVE_PRODUCT, "stock-service") == 6
    assert consumed(topics.PRODUCT_RESERVED, "orchestrator-service") == 6
    assert consumed(topics.PROCESS_PAYMENT, "payment-service") == 4
    assert consumed(topics.PAYMENT_PROCESSED, "orchestrator-service") == 4
    assert consumed(topics.CANCEL_PRODUCT_RESERVATION, "stock-service") == 1
    assert consumed(topics.PRODUCT_RESERVATION_CANCELLED, "orchestrator-service") == 1
    assert consumed(topics.ORDER_UPDATED, "order-service") == 6
    assert consumed(topics.ORDER_STATUS_APPLIED, "orchestrator-service") == 6
    assert consumed(topics.ORDER_UPDATED, "order-service", "duplicate") == 1
    assert consumed(topics.RESERVE_PRODUCT, "stock-service", "dead_lettered") == 1
    assert found.total("ordersaga_messages_consumed_total", result="duplicate") == 1
    assert found.total("ordersaga_messages_consumed_total", result="dead_lettered") == 1

    for service in ("order", "orchestrator", "stock", "payment"):
        assert found.total("ordersaga_outbox_rows_waiting", service=service) == 0
        assert found.total("ordersaga_outbox_oldest_age_seconds", service=service) == 0
        assert found.total("ordersaga_replica_info", service=service, replica="0") == 1
    # Every message sent went through a relay: 6 order-created, 6 reserve-product, ...
    assert found.total("ordersaga_relay_published_total") == 6 + 6 + 6 + 4 + 4 + 1 + 1 + 6 + 6
    assert found.total("ordersaga_relay_publish_duration_seconds_count") >= 1
    assert found.total("ordersaga_consumer_batch_size_sum") == 40 + 2  # and the two added
    assert found.total("ordersaga_handler_transaction_duration_seconds_count") >= 9
    assert found.select("ordersaga_consumer_lag", group="stock-service")
    assert found.total("ordersaga_consumer_lag") == 0
    assert found.total("ordersaga_producer_restarts_total") == 0

    def requests(route: str, method: str, status: str) -> float:
        return found.total(
            "ordersaga_http_requests_total", route=route, method=method, status=status
        )

    assert requests("/api/v1/orders", "POST", "201") == len(ORDERS)
    assert requests("/api/v1/orders", "POST", "422") == 1
    assert requests("/api/v1/orders/{orderID}", "GET", "200") == len(ORDERS)
    assert requests("/api/v1/orders/{orderID}", "GET", "404") == 1
    routes = {s.labels["route"] for s in found.select("ordersaga_http_requests_total")}
    assert all(unknown not in route and ids[0] not in route for route in routes)
    duration = "ordersaga_http_request_duration_seconds_count"
    assert found.total(duration, route="/api/v1/orders", method="POST") == len(ORDERS) + 1
    assert found.select("process_cpu_seconds_total")
    assert found.select("process_resident_memory_bytes")


async def test_the_metrics_port_serves_every_service(tmp_path: Path) -> None:
    async with running(tmp_path) as (system, http):
        await place_all(system, http)
        exposed = serve_metrics(system.metrics.registry, "127.0.0.1", 0)
        try:
            async with httpx.AsyncClient() as client:
                answer = await client.get(exposed.url)
        finally:
            exposed.close()
    found = parse(exposed.url, answer.text)
    services = {s.labels["service"] for s in found.select("ordersaga_replica_info")}
    assert services == {"order", "orchestrator", "stock", "payment"}
    assert found.total("ordersaga_sagas_finished_total") == len(ORDERS)
    assert found.total("ordersaga_http_requests_total", route="/api/v1/orders") == len(ORDERS)
