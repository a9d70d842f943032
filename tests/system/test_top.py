"""`ordersaga top --once --json` against a running `ordersaga up --embedded`: the figures
it reports are the orders placed."""

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ordersaga.runtime.processes import CLI, free_port
from tests.auth_support import operator_headers
from tests.support import until_sync

pytestmark = pytest.mark.slow


@pytest.fixture
def system(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`up --embedded` with its API and metrics on free ports: the API's URL, and the
    environment that points `ordersaga top` at its metrics port."""
    api, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "ORDERSAGA_METRICS_PORT": str(metrics),
        "ORDERSAGA_METRICS_INTERVAL": "0.1",
    }
    output = tmp_path / "up.txt"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, "up", "--embedded", "--data-dir", str(tmp_path / "data"), "--port", str(api)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, "COLUMNS": "300"},
        )
    try:
        until_sync(lambda: "Ctrl-C stops it" in output.read_text(), 60, "the banner")
        assert f"metrics on http://127.0.0.1:{metrics}/metrics" in output.read_text()
        yield f"http://127.0.0.1:{api}", env
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def place(api: str, orders: list[tuple[int, int, int]]) -> None:
    with httpx.Client(base_url=api, timeout=10, headers=operator_headers()) as http:
        for user, product, quantity in orders:
            body = {"userID": user, "productID": product, "quantity": quantity}
            placed = http.post("/api/v1/orders", json=body)
            assert placed.status_code == 201, placed.text
            where = f"/api/v1/orders/{placed.json()['orderID']}"

            def finished(where: str = where) -> bool:
                return http.get(where).json()["status"] != "ORDER_CREATED"

            until_sync(finished, 30, "the order's end")


def top(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, "top", "--once", "--interval", "0.2", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_top_once_reports_the_orders_placed(system: tuple[str, dict[str, str]]) -> None:
    api, env = system
    place(api, [(3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 3, 4)])  # three complete; one too many
    done = top(env, "--embedded", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["sagas_finished_total"] == {"completed": 3, "cancelled": 1}
    assert shown["sagas_finished_by_reason"] == {"none": 3, "stock_refused": 1}
    assert shown["dead_letters_total"] == 0
    assert shown["parked"] == 0
    assert set(shown["outbox_waiting"]) == {"order", "orchestrator", "stock", "payment"}
    assert set(shown["lag"]) == {
        "order-service", "orchestrator-service", "stock-service", "payment-service"
    }  # fmt: skip
    [replica] = shown["replicas"]
    assert replica["name"] == "embedded (4 services)"
    assert replica["error"] is None
    assert replica["cpu_cores"] is not None and replica["memory_bytes"] > 0

    port = env["ORDERSAGA_METRICS_PORT"]
    table = top(env, "--url", f"http://127.0.0.1:{port}/metrics")
    assert table.returncode == 0, table.stderr
    assert "completed 3" in table.stdout and "cancelled 1" in table.stdout
    assert "embedded (4 services)" in table.stdout


def test_top_says_which_endpoint_does_not_answer() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    done = top(dict(os.environ), "--url", url)
    assert done.returncode == 3
    assert url in done.stderr and "--url" in done.stderr
