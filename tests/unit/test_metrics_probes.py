"""The metrics port answers the probes of a replica that has no API: ``/healthz`` while
the process runs, ``/readyz`` with the replica's reason while it has one."""

import httpx
from prometheus_client import CollectorRegistry, Counter

from ordersaga.observability.serving import serve_metrics


def test_the_metrics_port_serves_metrics_and_both_probes() -> None:
    registry = CollectorRegistry()
    Counter("ordersaga_probe_demo_total", "a counter", registry=registry).inc(3)
    problem: list[str | None] = ["starting"]
    server = serve_metrics(registry, "127.0.0.1", 0, lambda: problem[0])
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert "ordersaga_probe_demo_total 3.0" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        unready = httpx.get(f"{base}/readyz")
        assert (unready.status_code, unready.json()) == (503, {"reason": "starting"})
        problem[0] = None
        ready = httpx.get(f"{base}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    finally:
        server.close()
