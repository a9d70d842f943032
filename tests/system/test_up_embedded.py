"""`ordersaga up --embedded` as a user runs it: SIGTERM stops it as cleanly as Ctrl-C,
and a port in use is an error before any banner."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from ordersaga.runtime.processes import CLI, free_port
from tests.support import until_sync


def start(data_dir: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    with output.open("wb") as out:
        return subprocess.Popen(
            [*CLI, "up", "--embedded", "--data-dir", str(data_dir), "--port", str(port),
             "--admin-port", str(free_port())],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", "ORDERSAGA_METRICS_PORT": "0"},
        )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    data, output, port = tmp_path / "data", tmp_path / "out.txt", free_port()
    process = start(data, port, output)
    try:
        until_sync(lambda: "Ctrl-C stops it" in output.read_text(), 60, "the banner")
        assert list(data.glob("*-wal")), "the databases are in WAL mode while running"
        process.send_signal(sig)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    said = output.read_text()
    assert said.rstrip().endswith("stopped."), said
    assert "admin API and console on http://127.0.0.1:" in said
    assert "(operator tokens required)" in said
    assert not list(data.glob("*-wal")) + list(data.glob("*-shm"))


def test_a_port_in_use_is_an_error_before_any_banner(tmp_path: Path) -> None:
    port = free_port()
    first = start(tmp_path / "first", port, tmp_path / "first.txt")
    try:
        until_sync(lambda: "Ctrl-C" in (tmp_path / "first.txt").read_text(), 60, "the banner")
        second = subprocess.run(
            [*CLI, "up", "--embedded", "--data-dir", str(tmp_path / "second"), "--port",
             str(port), "--admin-port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "ORDERSAGA_METRICS_PORT": "0"},
        )
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert second.returncode == 3
    assert "Ctrl-C" not in second.stdout
    assert f"port {port}" in second.stderr and "ORDERSAGA_API_PORT" in second.stderr
    assert not (tmp_path / "second").exists()


def test_without_authentication_an_admin_host_other_hosts_could_reach_is_refused(
    tmp_path: Path,
) -> None:
    # With tokens required the admin API may listen anywhere; without, loopback only.
    refused = subprocess.run(
        [*CLI, "up", "--embedded", "--data-dir", str(tmp_path / "data"), "--port",
         str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "ORDERSAGA_AUTH": "disabled",
            "ORDERSAGA_ADMIN_HOST": "0.0.0.0",
            "COLUMNS": "200",
        },
    )
    assert refused.returncode == 2, refused.stderr
    assert "ORDERSAGA_ADMIN_HOST=0.0.0.0 is not a loopback address" in refused.stderr
    assert not (tmp_path / "data").exists()
