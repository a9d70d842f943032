"""A real Prometheus for tests (Debian's ``prometheus``, which ``infra/infra.sh up
prometheus`` installs), and the PromQL the shipped files hold.

Each test gets a server of its own: its own port, configuration and data directory, so
no series of an earlier run is counted, and it dies with the test process.
"""

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ordersaga.runtime.processes import die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ordersaga.json"

RATE_WINDOW = "1m"
"""What the dashboard's ``$__rate_interval`` (and ``$__interval``) stand for in tests."""
TEMPLATE_VALUES = {
    "__rate_interval": RATE_WINDOW,
    "__interval": "15s",
    "__range": "5m",
    "service": ".*",
}
"""Concrete values for the template variables Grafana substitutes in the dashboard."""


def tool(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; the test fails, saying how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: `bash infra/infra.sh up prometheus` installs Debian's "
            "prometheus package (`make test` does it)",
            pytrace=False,
        )
    return path


def substitute(expr: str) -> str:
    """``expr`` with each ``$var`` / ``${var}`` of :data:`TEMPLATE_VALUES` replaced."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in TEMPLATE_VALUES:
            raise AssertionError(f"no test value for the template variable ${name} in {expr}")
        return TEMPLATE_VALUES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too, rows left out."""
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_queries() -> dict[str, str]:
    """Every ``expr`` of the dashboard, as PromQL Prometheus can run, by
    ``panel title / refId``."""
    return {
        f"{panel['title']} / {target['refId']}": substitute(target["expr"])
        for panel in panels(dashboard())
        for target in panel["targets"]
    }


def alert_queries() -> dict[str, str]:
    """Every alert's ``expr`` in alerts.yml, by alert name."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


class Prometheus:
    """A Prometheus on 127.0.0.1, a free port, run with ``config`` (YAML text) in
    ``directory``."""

    def __init__(self, directory: Path, config: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.config = directory / "prometheus.yml"
        self.config.write_text(config)
        self.log = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log_tail()}"
            try:
                if self.http.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus was not ready in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, expr: str) -> dict[str, Any]:
        """The answer of ``/api/v1/query`` to ``expr``, whatever its status."""
        response = self.http.get(f"{self.url}/api/v1/query", params={"query": expr})
        return dict(response.json())

    def values(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The instant vector ``expr`` gives, as labels → value; fails on an error."""
        answer = self.query(expr)
        assert answer["status"] == "success", f"{expr}: {answer}"
        assert answer["data"]["resultType"] == "vector", f"{expr}: {answer}"
        return {
            tuple(sorted(sample["metric"].items())): float(sample["value"][1])
            for sample in answer["data"]["result"]
        }

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def scrape_config(targets: dict[tuple[str, int], int], interval: str = "1s") -> str:
    """A configuration that scrapes ``targets`` ((service, replica) → port on 127.0.0.1)
    every ``interval`` as the shipped one does (job ``ordersaga``, the targets labelled
    service and replica) and loads the shipped alert rules."""
    static = [
        {
            "targets": [f"127.0.0.1:{port}"],
            "labels": {"service": service, "replica": str(replica)},
        }
        for (service, replica), port in sorted(targets.items())
    ]
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "ordersaga", "honor_labels": True, "static_configs": static},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
