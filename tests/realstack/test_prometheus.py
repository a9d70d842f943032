"""A real Prometheus scrapes the real stack: what PromQL says over the scraped series
matches what happened — every saga counted once with its outcome, the consumers caught
up, the outboxes empty — and every query of the dashboard runs on those series."""

import asyncio
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ordersaga.runtime.metrics import replica_metrics_port
from ordersaga.runtime.processes import die_with_parent
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.tools.bench.data import CHAOS_BROKE, CHAOS_PLENTIFUL, CHAOS_RICH, CHAOS_SOLD_OUT
from tests.auth_support import operator_headers
from tests.deploy.prometheus import Prometheus, alert_queries, dashboard_queries, scrape_config
from tests.realstack.quiet import add_chaos_data, wait_quiet
from tests.realstack.stack import CLI, Stack
from tests.realstack.test_real_stack import place, wait_all

REPLICAS = 2
COMPLETED, NO_STOCK, NO_MONEY = 30, 6, 4
"""Orders that complete, meet the sold-out product, or come from a user who cannot pay."""

DATA_WAIT = 15.0
"""Seconds for every dashboard query to show data once the run is over: a series that
appeared with its first count has the second sample ``rate()`` needs one scrape later."""


def free_port_block(size: int) -> int:
    """A base port such that base + 1 ... base + size are all free on 127.0.0.1."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 60000, 100)
        try:
            for port in range(base + 1, base + size + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no block of free ports found")


def orders() -> list[dict[str, int]]:
    """The orders to place, shuffled: each one's outcome is known in advance."""
    rng = random.Random(11)
    bodies = [
        *({"userID": rng.choice(CHAOS_RICH), "productID": rng.choice(CHAOS_PLENTIFUL)}
          for _ in range(COMPLETED)),
        *({"userID": rng.choice(CHAOS_RICH), "productID": CHAOS_SOLD_OUT}
          for _ in range(NO_STOCK)),
        *({"userID": rng.choice(CHAOS_BROKE), "productID": rng.choice(CHAOS_PLENTIFUL)}
          for _ in range(NO_MONEY)),
    ]  # fmt: skip
    rng.shuffle(bodies)
    return bodies


def wait_for(what: str, check: Callable[[], bool], prometheus: Prometheus, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, (
            f"{what}: not seen in {timeout} s\n{prometheus.log_tail()}"
        )
        time.sleep(0.5)


def single(prometheus: Prometheus, expr: str) -> float:
    """The value of ``expr``, which must give exactly one sample."""
    values = prometheus.values(expr)
    assert len(values) == 1, f"{expr}: {values}"
    return next(iter(values.values()))


LAG = "sum by (service) (ordersaga_consumer_lag)"
WAITING = "max by (service) (ordersaga_outbox_rows_waiting)"


def by_service(prometheus: Prometheus, expr: str) -> dict[str, float]:
    """The value of ``expr`` (aggregated by service) for each service."""
    return {dict(labels)["service"]: v for labels, v in prometheus.values(expr).items()}


def no_data(prometheus: Prometheus, queries: dict[str, str]) -> list[str]:
    """The names of ``queries`` whose answer holds no series."""
    return sorted(
        name for name, expr in queries.items() if not prometheus.query(expr)["data"]["result"]
    )


@pytest.fixture
def scraped(stack: Stack, tmp_path: Path) -> Iterator[Prometheus]:
    """``ordersaga up --replicas 2`` on the stack, each replica's metrics on its own port
    under a base of the test's, and a Prometheus scraping them every second."""
    base = free_port_block(10 * len(SERVICE_NAMES))
    ports = {
        (service, replica): replica_metrics_port(base, service, replica)
        for service in SERVICE_NAMES
        for replica in range(1, REPLICAS + 1)
    }
    stack.env["ORDERSAGA_METRICS_PORT"] = str(base)
    stack.env["ORDERSAGA_METRICS_INTERVAL"] = "0.5"
    asyncio.run(add_chaos_data(stack))
    with open(stack.logs / "up.log", "ab") as log:
        stack.processes["up"] = subprocess.Popen(
            [*CLI, "up", "--replicas", str(REPLICAS)],
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    stack.wait_ready()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    prometheus = Prometheus(directory, scrape_config(ports, interval="1s"))
    prometheus.start()
    try:
        yield prometheus
    finally:
        prometheus.stop()


def test_promql_over_the_scraped_series_tells_what_happened(
    stack: Stack, scraped: Prometheus
) -> None:
    prometheus = scraped
    targets = len(SERVICE_NAMES) * REPLICAS
    wait_for(
        "every replica scraped",
        lambda: prometheus.values('sum(up{job="ordersaga"})') == {(): float(targets)},
        prometheus,
        timeout=60,
    )

    bodies = orders()
    with (
        httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        placed = list(pool.map(lambda b: place(http, b["userID"], b["productID"], 1), bodies))
        finished = wait_all(http, [p["orderID"] for p in placed])
    assert sum(o["status"] == "ORDER_COMPLETED" for o in finished.values()) == COMPLETED
    assert not asyncio.run(wait_quiet(stack, timeout=60))

    total = len(bodies)
    # A consumer's lag is in the series from the first record it reads: each service's
    # appears one scrape after its first batch, so the wait is for every service's.
    at_rest = dict.fromkeys(SERVICE_NAMES, 0.0)
    wait_for(
        "every saga finished, every consumer caught up, every outbox empty",
        lambda: (
            prometheus.values("sum(ordersaga_sagas_finished_total)") == {(): float(total)}
            and by_service(prometheus, LAG) == at_rest
            and by_service(prometheus, WAITING) == at_rest
        ),
        prometheus,
        timeout=60,
    )

    assert single(prometheus, "sum(ordersaga_sagas_started_total)") == total
    outcomes = prometheus.values(
        "sum by (outcome, reason_class) (ordersaga_sagas_finished_total) > 0"
    )
    assert outcomes == {
        (("outcome", "completed"), ("reason_class", "none")): COMPLETED,
        (("outcome", "cancelled"), ("reason_class", "stock_refused")): NO_STOCK,
        (("outcome", "cancelled"), ("reason_class", "payment_refused")): NO_MONEY,
    }
    # A refused payment undoes the stock reservation: one compensation each, acknowledged.
    assert single(prometheus, "sum(ordersaga_saga_compensations_sent_total)") == NO_MONEY
    assert single(prometheus, "sum(ordersaga_saga_compensations_acknowledged_total)") == NO_MONEY
    assert single(prometheus, "sum(ordersaga_saga_duration_seconds_count)") == total
    assert single(prometheus, 'sum(ordersaga_http_requests_total{method="POST"})') == total

    # Every service's consumers and outboxes are in the series, and all are at rest.
    assert by_service(prometheus, LAG) == at_rest
    assert by_service(prometheus, WAITING) == at_rest
    memory = prometheus.values("sum by (service, replica) (process_resident_memory_bytes)")
    assert len(memory) == targets and all(v > 0 for v in memory.values())

    # The dashboard and the alerts run on these series, and every panel shows data: even
    # those of deadlines and retries, which a healthy run never counts, are there at 0.
    queries = dashboard_queries()
    answers = {
        name: prometheus.query(expr) for name, expr in {**queries, **alert_queries()}.items()
    }
    refused = {name: a for name, a in answers.items() if a["status"] != "success"}
    assert not refused, refused
    deadline = time.monotonic() + DATA_WAIT
    while (empty := no_data(prometheus, queries)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not empty, f"no data: {empty}"
    # A healthy run raises no alert.
    assert prometheus.values('ALERTS{alertstate="firing"}') == {}
