"""The services on a three-node Kafka cluster (replication factor 3, min.insync.replicas
2, unclean election off) while nodes fail under load: the leader killed, a node hung,
two nodes down, a rolling restart. After each: every order ends, the invariants hold,
nothing is left in an outbox, every message on the wire was handled exactly once by
its consumer, and the topics read back with a plain client show each saga's messages
in order.

The cluster is `infra/infra.sh up kafka3` (`make infra-up-cluster`): started for these
tests when it is not running (`make test` starts it beside its in-process tests), and then
stopped after them; a test brings back whatever it took down. It does not touch the
single node on 9092, so these tests need no lock against the other real-stack tests.
"""

import asyncio
import random
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from ordersaga.contracts import topics
from ordersaga.db.engine import make_engine
from ordersaga.messaging.kafka_config import client_options
from ordersaga.messaging.replication import ReplicationMismatch, check_replication
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.tools.bench.data import chaos_order
from tests.auth_support import operator_headers
from tests.realstack import cluster
from tests.realstack.broker_view import BrokerView, count_rows, inboxes, read_back
from tests.realstack.stack import CLI, Stack
from tests.realstack.test_database_outage import add_chaos_data
from tests.realstack.test_real_stack import assert_verified, place, wait_all

RATE = 12.0  # orders a second: a steady load two cores carry beside three brokers
PRODUCER_REPLACED = re.compile(r"the Kafka producer is unusable")


@pytest.fixture(scope="module", autouse=True)
def _the_cluster() -> Iterator[None]:
    with cluster.started_for_these_tests():
        yield


@pytest.fixture
def cluster_stack(tmp_path: Path) -> Iterator[Stack]:
    cluster.require_cluster()
    stack = Stack(logs=tmp_path, kafka=cluster.BOOTSTRAP, replication=3)
    stack.prepare()
    asyncio.run(add_chaos_data(stack))
    try:
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            try:
                cluster.up()  # no node left down or hung for the next test
            finally:
                stack.drop()


@dataclass
class Load:
    """Places orders at ``rate`` a second from a thread until stopped; every one must be
    answered 201 (or 200 for a retried key)."""

    api: str
    rate: float = RATE
    ids: list[str] = field(default_factory=list)
    placed_at: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(23)
        start = time.monotonic()
        try:
            with httpx.Client(base_url=self.api, timeout=15, headers=operator_headers()) as http:
                while not self._stop.is_set():
                    body = chaos_order(rng)
                    key = f"cluster-{len(self.ids)}"
                    order = place(http, body["userID"], body["productID"], body["quantity"], key)
                    self.ids.append(order["orderID"])
                    self.placed_at.append(time.monotonic())
                    pause = start + len(self.ids) / self.rate - time.monotonic()
                    self._stop.wait(max(0.0, pause))
        except BaseException as error:  # reported by stop()
            self.error = error

    def until_placed(self, more: int, within: float = 60) -> None:
        """Wait until ``more`` orders more than now are placed."""
        target = len(self.ids) + more
        cluster.until(lambda: len(self.ids) >= target or self.error is not None, within, "load")
        assert self.error is None, self.error

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
        assert self.error is None, self.error


@dataclass
class Figures:
    scenario: str
    placed: int
    terminal: int
    time_to_quiet: float
    wire_copies: int
    producer_replaced: int
    messages: int

    def line(self) -> str:
        return (
            f"{self.scenario}: orders placed {self.placed}, terminal {self.terminal}, "
            f"time to quiet {self.time_to_quiet:.1f}s, messages on the wire {self.messages}, "
            f"copies sent again and absorbed by the inbox {self.wire_copies}, "
            f"producers replaced {self.producer_replaced}"
        )


def run_under_fault(stack: Stack, scenario: str, fault: Callable[[Load], None]) -> Figures:
    """Orders streaming in; ``fault`` injected and cured; more orders; then every check."""
    stack.start_all()
    load = Load(stack.api)
    load.start()
    try:
        load.until_placed(40)
        fault(load)
        load.until_placed(40)  # after the cure, on the recovered cluster
    finally:
        load.stop()
    stopped = time.monotonic()
    with httpx.Client(base_url=stack.api, timeout=15, headers=operator_headers()) as http:
        orders = wait_all(http, load.ids, timeout=240)
    quiet = time.monotonic() - stopped
    stack.assert_alive()
    assert_verified(stack)
    view = check_the_wire(stack, load.ids)
    replaced = sum(
        len(PRODUCER_REPLACED.findall(p.read_text(errors="replace")))
        for p in stack.logs.glob("*.log")
    )
    figures = Figures(
        scenario,
        len(load.ids),
        len(orders),
        quiet,
        view.copies(),
        replaced,
        len(view.messages),
    )
    print(figures.line())
    return figures


def urls(stack: Stack) -> dict[str, str]:
    return {s: stack.urls[s] for s in SERVICE_NAMES}


def check_the_wire(stack: Stack, order_ids: list[str]) -> BrokerView:
    """Outboxes empty, nothing parked, every saga's messages on the wire in order, and
    every message handled once: each consumed topic's ids are exactly its inbox's."""
    databases = urls(stack)
    cluster.until(lambda: count_rows(databases, "outbox") == 0, 60, "the outboxes to empty")
    assert count_rows(databases, "outbox_failed") == 0
    view = read_back(stack.kafka)
    assert view.order_problems() == []
    on_wire = view.ids()
    assert not any(t.endswith(".DLQ") for t in on_wire), sorted(on_wire)
    keys = {t: {m.key for m in ms} for t, ms in view.by_topic().items()}
    assert set(order_ids) <= keys["order-created"]
    assert set(order_ids) <= keys["order-updated"]

    def handled_once() -> bool:
        return inboxes(databases) == on_wire

    cluster.until(handled_once, 30, "every message on the wire to be handled")
    return view


def test_the_cluster_gives_the_saga_topics_three_replicas_and_min_insync_two(
    cluster_stack: Stack,
) -> None:
    cluster_stack.start_all()
    options = client_options(cluster_stack.settings)
    asyncio.run(check_replication(options, topics.with_dead_letters(), 3))
    with pytest.raises(ReplicationMismatch, match="expected 5"):
        asyncio.run(check_replication(options, topics.with_dead_letters(), 5))


def test_a_replica_refuses_to_start_on_topics_of_one_replica(cluster_stack: Stack) -> None:
    cluster_stack.start_all()  # creates the topics with three replicas
    cluster_stack.stop()
    env = {**cluster_stack.env, "ORDERSAGA_KAFKA_REPLICATION_FACTOR": "2"}
    done = subprocess.run(
        [*CLI, "serve", "stock", "--replica", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "reserve-product: 3 replica(s) per partition" in out
    assert "expected 2" in out


def test_the_leader_of_the_busiest_partitions_killed_under_load(cluster_stack: Stack) -> None:
    def kill_the_leader(load: Load) -> None:
        node = cluster.Node(cluster.busiest_leader())
        node.kill()
        load.until_placed(int(RATE * 8))
        cluster.up()

    figures = run_under_fault(cluster_stack, "leader kill -9", kill_the_leader)
    assert figures.terminal == figures.placed


def test_a_hung_broker_is_left_behind_and_rejoins(cluster_stack: Stack) -> None:
    def hang_a_broker(load: Load) -> None:
        node = cluster.Node(cluster.busiest_leader())
        node.stop()
        try:
            # Longer than the consumers' session (10 s), the relay's send timeout (10 s)
            # and the brokers' session (6 s): producers and consumers must move on.
            placed = len(load.ids)
            load.until_placed(int(RATE * 20))
            hung_for = int(RATE * 20)
            assert len(load.ids) - placed >= hung_for
        finally:
            node.resume()
        cluster.until(cluster.fully_replicated, 120, "the hung node to catch up")

    figures = run_under_fault(cluster_stack, "broker SIGSTOP 20 s", hang_a_broker)
    assert figures.terminal == figures.placed


def test_below_min_insync_replicas_orders_wait_in_the_outbox(cluster_stack: Stack) -> None:
    def two_nodes_down(load: Load) -> None:
        others = cluster.NODES[1:]  # node 1 survives
        for node in others:
            cluster.Node(node).kill()
        placed = len(load.ids)
        load.until_placed(int(RATE * 15))  # the API still answers 201
        during = load.ids[placed:]
        waiting = asyncio.run(order_created_waiting(cluster_stack))
        assert set(during) <= waiting, "an order-created left the outbox without an ack"
        as_operator = operator_headers()
        with httpx.Client(base_url=cluster_stack.api, timeout=15, headers=as_operator) as http:
            statuses = {http.get(f"/api/v1/orders/{i}").json()["status"] for i in during}
        assert statuses == {"ORDER_CREATED"}
        cluster.up(others[0])  # back to two in-sync replicas: writes are taken again
        load.until_placed(int(RATE * 5))
        cluster.up()

    figures = run_under_fault(cluster_stack, "two of three nodes down", two_nodes_down)
    assert figures.terminal == figures.placed


async def order_created_waiting(stack: Stack) -> set[str]:
    """The keys of the order-created messages still in the order service's outbox."""
    engine = make_engine(stack.urls["order"])
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT message_key FROM outbox WHERE topic = 'order-created'")
            )
            return {key for (key,) in rows}
    finally:
        await engine.dispose()


# Three nodes stopped, started and caught up in turn: 70 s on a quiet machine, over four
# minutes on a busy one; the suite's 300 s would cut it short there.
@pytest.mark.timeout(600)
def test_a_rolling_restart_of_every_node_under_load(cluster_stack: Stack) -> None:
    def rolling_restart(load: Load) -> None:
        for node in cluster.NODES:
            cluster.Node(node).terminate()
            load.until_placed(int(RATE * 3))
            cluster.up(node)
            # As an upgrade does: the next node only once every partition is whole again.
            cluster.until(cluster.fully_replicated, 120, f"node {node} to catch up")

    figures = run_under_fault(cluster_stack, "rolling restart", rolling_restart)
    assert figures.terminal == figures.placed
