"""``ordersaga up`` on the real stack: every replica serves its metrics on its own port,
labelled with its service and replica, and they count the orders placed."""

import random
import socket
import subprocess

import httpx

from ordersaga.runtime.metrics import replica_metrics_port
from ordersaga.tools.scrape import parse
from tests.auth_support import operator_headers
from tests.realstack.stack import CLI, Stack
from tests.support import until_sync

SERVICES = ("order", "orchestrator", "stock", "payment")


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_base() -> int:
    """A base port whose four replica ports (base + 1, 11, 21, 31) nothing listens on."""
    while True:
        base = random.randrange(20000, 30000, 100)
        if all(free(replica_metrics_port(base, s, 1)) for s in SERVICES):
            return base


def test_each_replica_serves_its_metrics_port(stack: Stack) -> None:
    base = free_base()
    stack.env["ORDERSAGA_METRICS_PORT"] = str(base)
    stack.env["ORDERSAGA_METRICS_INTERVAL"] = "0.2"
    with open(stack.logs / "up.log", "ab") as log:
        stack.processes["up"] = subprocess.Popen(
            [*CLI, "up"], env=stack.env, stdout=log, stderr=subprocess.STDOUT
        )
    stack.wait_ready()
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        ids = []
        for user, product, quantity in [(3, 1, 1), (3, 3, 4)]:  # one completes, one cannot
            body = {"userID": user, "productID": product, "quantity": quantity}
            placed = http.post("/api/v1/orders", json=body)
            assert placed.status_code == 201, placed.text
            ids.append(placed.json()["orderID"])

        def ended() -> bool:
            return all(http.get(f"/api/v1/orders/{i}").json()["status"] != "ORDER_CREATED"
                       for i in ids)  # fmt: skip

        until_sync(ended, 60, "the orders' end", interval=0.2)

    said = (stack.logs / "up.log").read_text()
    found = {}
    for service in SERVICES:
        port = replica_metrics_port(base, service, 1)
        assert f"metrics on http://127.0.0.1:{port}/metrics" in said, said
        url = f"http://127.0.0.1:{port}/metrics"
        found[service] = parse(url, httpx.get(url, timeout=5).text)
        # the probes of a replica without an API (Kubernetes asks them on this port)
        base_url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base_url}/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{base_url}/readyz", timeout=5).json() == {"status": "ok"}
        info = found[service].select("ordersaga_replica_info")
        assert [(s.labels["service"], s.labels["replica"]) for s in info] == [(service, "1")]
        assert found[service].select("process_cpu_seconds_total")

    def finished() -> dict[tuple[str, str], float]:
        url = f"http://127.0.0.1:{replica_metrics_port(base, 'orchestrator', 1)}/metrics"
        scraped = parse(url, httpx.get(url, timeout=5).text)
        return {
            (s.labels["outcome"], s.labels["reason_class"]): s.value
            for s in scraped.select("ordersaga_sagas_finished_total")
        }

    # The saga finishes once the order service's acknowledgement is consumed.
    until_sync(lambda: sum(finished().values()) == 2, 30, "both sagas finished", interval=0.2)
    assert finished() == {("completed", "none"): 1, ("cancelled", "stock_refused"): 1}
    order = found["order"]
    assert order.total("ordersaga_http_requests_total", route="/api/v1/orders", status="201") == 2
    stock = found["stock"]
    assert (
        stock.total("ordersaga_messages_consumed_total", topic="reserve-product", result="handled")
        == 2
    )
