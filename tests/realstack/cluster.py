"""The three-node Kafka cluster of `infra/infra.sh up kafka3`, driven from tests: which
node leads what, and a node killed, hung (SIGSTOP), resumed, stopped or started again.

The nodes are found by the ports they listen on, so this works whichever checkout
started them. This repository's ``infra/infra.sh up kafka3`` starts the nodes that are
down (and SIGCONTs a stopped one); when the running cluster was started from another
checkout, set INFRA_CACHE to that checkout's .cache (its pids and data are there).
"""

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.messaging.kafka_config import client_options
from ordersaga.tools.chaos_kafka import CLUSTER_BOOTSTRAP, node_port

ROOT = Path(__file__).resolve().parents[2]
NODES = (1, 2, 3)
HOST = "127.0.0.1"
BOOTSTRAP = CLUSTER_BOOTSTRAP


def port(node: int) -> int:
    return node_port(node)


def pid(node: int) -> int | None:
    """The pid of the process listening on ``node``'s port, or None."""
    listed = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port(node)}"], capture_output=True, text=True
    ).stdout
    for part in listed.replace(",", " ").split():
        if part.startswith("pid="):
            return int(part[4:])
    return None


def _infra_command(action: str) -> list[str]:
    return ["bash", str(ROOT / "infra" / "infra.sh"), action, "kafka3"]


def _infra(action: str, env: dict[str, str] | None = None) -> None:
    """``infra/infra.sh ACTION kafka3``, failing the test with its output if it fails."""
    done = subprocess.run(
        _infra_command(action), capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, f"infra.sh {action} kafka3 failed:\n{done.stdout}{done.stderr}"


# A node a test brings back starts while the services, the load and the other two nodes
# share the machine's cores: its JVM compiles with C1 only (a fifth less start-up under
# contention; the brokers' few messages a second need no more), and `up` waits for its
# port only, then answers() asks the node itself instead of starting a JVM to ask it. The
# node is the same broker with the same settings: only its start is quicker.
RESTART_ENV = {"KAFKA3_JAVA_OPTS": "-XX:TieredStopAtLevel=1", "KAFKA3_READY": "port"}


def up(*nodes: int) -> float:
    """Start the nodes that are down (only ``nodes`` when given), resume a stopped one,
    and wait until each answers; seconds it took."""
    start = time.monotonic()
    env = {**os.environ, **RESTART_ENV}
    if nodes:
        env["KAFKA3_UP"] = " ".join(map(str, nodes))
    _infra("up", env)
    for node in nodes or NODES:
        until(functools.partial(answers, node), 90, f"node {node} to answer")
    return time.monotonic() - start


def down() -> None:
    """Stop the three nodes."""
    _infra("down")


_STOPPING: list[subprocess.Popen[bytes]] = []  # the cluster stopping beside the next tests


@contextlib.contextmanager
def started_for_these_tests() -> Iterator[None]:
    """The cluster up for the tests inside; stopped after them if it was started here, or
    for them (KAFKA3_STARTED_FOR_TESTS: infra/test-suite.sh starts it beside the in-process
    tests), so it does not idle on the machine through every other suite. Stopping takes
    seconds, or a minute when a node waits for a controller quorum the other two took
    with them (infra.sh then kills it): under infra/test-suite.sh it goes on beside the
    next tests, and the script's own `down kafka3` at its end waits for it (infra.sh runs
    one `up` or `down` at a time)."""
    started_for_them = os.environ.get("KAFKA3_STARTED_FOR_TESTS") == "1"
    already = all(pid(n) for n in NODES)
    if not already:
        _infra("up")
    try:
        yield
    finally:
        if started_for_them and already:
            _STOPPING.append(
                subprocess.Popen(
                    _infra_command("down"),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        elif started_for_them or not already:
            down()


def require_cluster() -> None:
    """Bring the cluster up if a node is down, and fail saying how if it cannot be."""
    if all(pid(n) for n in NODES):
        return
    _infra("up")  # a start as infra.sh does it, SCRAM users and ACLs included


class Node:
    """One node, by id, with the signals a test sends it."""

    def __init__(self, node: int) -> None:
        found = pid(node)
        assert found is not None, f"kafka3 node {node} is not running"
        self.id = node
        self.pid = found

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        until(lambda: pid(self.id) is None, 30, f"node {self.id} to die")

    def terminate(self) -> None:
        """SIGTERM, as an upgrade does: the node hands its leaders over and exits."""
        os.kill(self.pid, signal.SIGTERM)
        until(lambda: pid(self.id) is None, 90, f"node {self.id} to stop")

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


def until(condition: Callable[[], bool], within: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, f"waited {within:g}s for {what}"
        time.sleep(0.2)
    return time.monotonic() - start


async def _partitions() -> list[dict[str, Any]]:
    options = client_options(Settings(kafka_bootstrap_servers=BOOTSTRAP))
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics.with_dead_letters()))
    finally:
        await admin.close()
    return [p for t in described if t["error_code"] == 0 for p in t["partitions"]]


def busiest_leader() -> int:
    """The node that leads the most partitions of the saga topics."""
    leaders = Counter(int(p["leader"]) for p in asyncio.run(_partitions()))
    leaders.pop(-1, None)
    return leaders.most_common(1)[0][0]


def answers(node: int) -> bool:
    """``node`` answers a metadata request on its client listener, as a service logs in."""

    async def ask() -> None:
        settings = Settings(kafka_bootstrap_servers=f"{HOST}:{port(node)}")
        admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=5_000)
        try:
            await admin.start()  # the bootstrap: a metadata request to this node alone
        finally:
            await admin.close()

    try:
        asyncio.run(ask())
    except Exception:  # still starting
        return False
    return True


def fully_replicated() -> bool:
    """Every partition of the saga topics has its three replicas in sync."""
    try:
        partitions = asyncio.run(_partitions())
    except Exception:  # a node still starting
        return False
    return bool(partitions) and all(len(p["isr"]) == len(NODES) for p in partitions)
