"""The services under faults: replicas killed, Kafka, PostgreSQL and MariaDB restarted;
and the order service's readiness following its database."""

import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.outbox import OutboxRelay, write_outbox
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.services.stock.tables import metadata, outbox
from ordersaga.tools.chaos import INFRA_PARTS, plan_faults
from tests.auth_support import operator_headers
from tests.realstack.stack import Stack
from tests.realstack.test_real_stack import place, wait_all

ROOT = Path(__file__).resolve().parents[2]
# What the run prints as it injects a fault, e.g. "  12.3s kill -9 stock-2 restarted after 1.5s".
FAULT_LINE = re.compile(
    r"^\s*[\d.]+s (?P<kind>kill -9|restart) (?P<target>\S+)(?P<skipped> already down)?",
    re.MULTILINE,
)


def test_a_seeded_chaos_run_keeps_every_invariant(stack: Stack, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ordersaga.cli",
            "chaos",
            "--duration=30",
            "--orders-per-second=4",
            "--seed=7",
            f"--infra-dir={ROOT / 'infra'}",
            f"--log-dir={tmp_path / 'chaos'}",
            "--quiet-timeout=60",
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    print(out)  # the run's figures, for `pytest -s`
    assert done.returncode == 0, out
    injected = Counter(
        (m["kind"], m["target"]) for m in FAULT_LINE.finditer(done.stdout) if m["skipped"] is None
    )
    for service in ("order", "orchestrator", "stock", "payment"):
        assert sum(n for (k, t), n in injected.items() if t.startswith(service)) >= 1, out
    for part in ("kafka", "postgres", "mariadb"):
        assert injected[("restart", part)] == 1, out
    assert "chaos run passed" in out
    mix = dict((kind, int(n)) for kind, n in re.findall(r"([a-z][a-z ]+?) (\d+) \(\d+%\)", out))
    total = sum(mix.values())
    assert mix.get("completed", 0) >= 0.3 * total, out
    assert mix.get("refused by payment", 0) > 0 and mix.get("refused by stock", 0) > 0, out


def ready_status(http: httpx.Client) -> tuple[int, str]:
    try:
        response = http.get("/readyz", timeout=4)
    except httpx.TransportError as error:
        return 0, repr(error)
    return response.status_code, response.text


def until_ready_is(http: httpx.Client, wanted: int, within: float) -> tuple[float, str]:
    """Seconds until /readyz answers ``wanted``, and its body then."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        status, body = ready_status(http)
        if status == wanted:
            return time.monotonic() - start, body
        time.sleep(0.2)
    raise AssertionError(f"/readyz did not answer {wanted} within {within:g}s: {status} {body}")


def test_readiness_follows_the_order_database(stack: Stack) -> None:
    infra = ROOT / "infra" / "infra.sh"
    stack.start_all()
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        subprocess.run(["bash", str(infra), "down", "mariadb"], check=True, capture_output=True)
        try:
            _, body = until_ready_is(http, 503, within=5)
            assert "database" in body
        finally:
            subprocess.run(["bash", str(infra), "up", "mariadb"], check=True, capture_output=True)
        until_ready_is(http, 200, within=10)
        order = place(http, user=1, product=1, quantity=1, key="after-mariadb-came-back")
        finished = wait_all(http, [order["orderID"]], timeout=60)
    assert finished[order["orderID"]]["status"] == "ORDER_COMPLETED"
    stack.assert_alive()


@pytest.mark.parametrize("seed", range(5))
def test_every_plan_kills_each_service_and_restarts_each_part_once(seed: int) -> None:
    plan = plan_faults(random.Random(seed), duration=30, replicas=2)
    assert {f.target for f in plan if f.kind == "kill"} == set(SERVICE_NAMES)
    assert sorted(f.target for f in plan if f.kind == "restart") == sorted(INFRA_PARTS)
    assert all(3 <= f.at <= 21 and f.replica in (1, 2) for f in plan)
    assert plan == plan_faults(random.Random(seed), duration=30, replicas=2)


class SwitchableProducer:
    """Takes messages while ``up``; refuses them as an unreachable broker would."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[OutgoingMessage] = []

    async def send_batch(self, batch: Sequence[OutgoingMessage]) -> None:
        if not self.up:
            raise ConnectionError("broker unreachable")
        self.sent += batch

    async def close(self) -> None:
        pass


async def test_the_relay_reports_a_broker_it_cannot_publish_to_until_it_can(
    tmp_path: Path,
) -> None:
    engine = make_engine(sqlite_url(tmp_path / "stock.sqlite3"))
    await create_schema(engine, metadata)
    producer = SwitchableProducer()
    relay = OutboxRelay(engine, outbox, producer)
    message = OutgoingMessage("product-reserved", "k", b"v", {"message-id": "m1"})
    async with engine.begin() as conn:
        await write_outbox(conn, outbox, [message])
    producer.up = False
    with pytest.raises(ConnectionError):
        await relay.publish_once()
    assert "broker unreachable" in (relay.publish_problem() or "")
    producer.up = True
    assert await relay.publish_once() == 1
    assert relay.publish_problem() is None
    assert producer.sent == [message]
    await engine.dispose()
