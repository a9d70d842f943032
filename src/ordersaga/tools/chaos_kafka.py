"""Faults of a Kafka cluster for ``ordersaga chaos --kafka cluster``: the node leading
the most saga partitions killed, and a node hung (SIGSTOP) past every session timeout.

The cluster is the three-node one of ``infra/infra.sh up kafka3``; its nodes are found
by the ports they listen on, and ``infra.sh up kafka3`` starts a killed one again.
"""

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from ordersaga.contracts import topics

CLUSTER_NODES = (1, 2, 3)
# infra/kafka3.sh's client ports are KAFKA3_PORT_BASE + 2 * node (29092, 29094, 29096).
PORT_BASE = int(os.environ.get("KAFKA3_PORT_BASE", "29090"))
CLUSTER_BOOTSTRAP = ",".join(f"127.0.0.1:{PORT_BASE + 2 * n}" for n in CLUSTER_NODES)
CLUSTER_REPLICATION = 3


def node_port(node: int) -> int:
    return PORT_BASE + 2 * node


async def node_pid(node: int) -> int | None:
    """The pid listening on ``node``'s port (``ss``), or None when it is down."""
    process = await asyncio.create_subprocess_exec(
        "ss",
        "-Hltnp",
        f"sport = :{node_port(node)}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    for part in out.decode().replace(",", " ").split():
        if part.startswith("pid="):
            return int(part[4:])
    return None


def busiest(leaders: Sequence[int]) -> int:
    """The node that leads the most partitions (of leader ids, -1 for none)."""
    counted = Counter(n for n in leaders if n >= 0)
    if not counted:
        raise RuntimeError("no partition of the saga topics has a leader")
    return counted.most_common(1)[0][0]


async def busiest_leader(options: Mapping[str, Any]) -> int:
    """The node leading the most partitions of the saga topics now, asked with the
    client ``options`` (``kafka_config.client_options``)."""
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics.ALL))
    finally:
        await admin.close()
    return busiest(
        [p["leader"] for t in described if t["error_code"] == 0 for p in t["partitions"]]
    )


async def kill_node(node: int) -> bool:
    """SIGKILL ``node``; False when it was not running."""
    pid = await node_pid(node)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL)
    return True


async def hang_node(node: int, seconds: float) -> bool:
    """SIGSTOP ``node`` for ``seconds``, then SIGCONT; False when it was not running."""
    pid = await node_pid(node)
    if pid is None:
        return False
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return True
