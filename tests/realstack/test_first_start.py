"""The real stack as a new user starts it: a quiet `ordersaga up` that says where each
service is ready, and `ordersaga db reset --yes` that starts from empty."""

import signal
import subprocess
from pathlib import Path

import httpx

from tests.auth_support import operator_headers
from tests.realstack.stack import CLI, Stack
from tests.support import until_sync

SERVICES = ("order", "orchestrator", "stock", "payment")


def test_up_starts_quietly_and_says_where_each_service_is_ready(
    stack: Stack, tmp_path: Path
) -> None:
    output = tmp_path / "up.txt"
    with output.open("wb") as out:
        up = subprocess.Popen(
            [*CLI, "up"], env={**stack.env, "COLUMNS": "250"}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        def ready_lines() -> list[str]:
            return [line for line in output.read_text().splitlines() if " ready: " in line]

        until_sync(lambda: len(ready_lines()) == len(SERVICES), 90, "a ready line per service")
        order = httpx.post(
            f"{stack.api}/api/v1/orders",
            json={"userID": 1, "productID": 1, "quantity": 1},
            headers=operator_headers(),
        ).json()

        def finished() -> bool:
            got = httpx.get(
                f"{stack.api}/api/v1/orders/{order['orderID']}", headers=operator_headers()
            ).json()
            return bool(got["status"] != "ORDER_CREATED")

        until_sync(finished, 60, "the first order's saga to finish", interval=0.2)
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
    finally:
        up.kill()
    said = output.read_text()
    assert " ERROR " not in said and '"level":"ERROR"' not in said, said
    lines = ready_lines()
    assert any(f"API on {stack.api}" in line for line in lines), lines
    for service in ("orchestrator", "stock", "payment"):
        assert any(f"{service} replica 1 ready: consuming" in line for line in lines), lines


def test_db_reset_starts_from_empty(stack: Stack) -> None:
    refused = stack.cli("db", "reset", check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    stack.cli("db", "reset", "--yes")
    upgraded = stack.cli("db", "upgrade").stdout
    assert all(f"{name}: created schema 0001.." in upgraded for name in SERVICES), upgraded
    assert "order: loaded 3 products" in stack.cli("seed").stdout
