"""``ordersaga up --embedded`` killed with SIGKILL mid-flight, started again on its data."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.auth_support import operator_headers
from tests.support import until_sync

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "ordersaga.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*CLI, "up", "--embedded", "--data-dir", str(data_dir), "--port", str(port),
         "--admin-port", str(free_port())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "ORDERSAGA_METRICS_PORT": "0"},
    )

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        until_sync(ready, 30, "readiness", interval=0.1)
    except AssertionError:
        process.kill()
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise AssertionError(f"did not come up: {stderr}") from None
    return process


def test_sigkill_mid_flight_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1/orders"
    process = start(tmp_path, port)
    try:
        ids = []
        with httpx.Client(timeout=5, headers=operator_headers()) as http:
            for i in range(60):
                body = {"userID": 1 + i % 3, "productID": 1 + i % 3, "quantity": 1}
                response = http.post(api, json=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["orderID"])
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    process = start(tmp_path, port)
    try:
        with httpx.Client(timeout=5, headers=operator_headers()) as http:

            def all_ended() -> bool:
                statuses = [http.get(f"{api}/{i}").json()["status"] for i in ids]
                return "ORDER_CREATED" not in statuses

            until_sync(all_ended, 60, "every order ended", interval=0.2)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    verify = subprocess.run([*CLI, "verify", "--data-dir", str(tmp_path)], capture_output=True)
    assert verify.returncode == 0, verify.stdout.decode()
