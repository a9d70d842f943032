"""``ordersaga up`` leaves nothing behind, even when it is killed with SIGKILL."""

import asyncio
import os
import signal
import socket
import subprocess
from pathlib import Path

from tests.realstack.stack import CLI, Stack
from tests.support import until


def children_of(pid: int) -> set[int]:
    """The pids of ``pid``'s children, from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent (gone here) would reap it.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_the_replicas_die_with_a_supervisor_killed_by_sigkill(stack: Stack) -> None:
    with open(stack.logs / "up.log", "ab") as log:
        supervisor = subprocess.Popen(
            [*CLI, "up"], env=stack.env, stdout=log, stderr=subprocess.STDOUT
        )
    stack.processes["up"] = supervisor  # so a failure shows its log and it is stopped
    stack.wait_ready()
    replicas = children_of(supervisor.pid)
    try:
        assert len(replicas) == 4, stack.log_tails()
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
        stack.processes.pop("up")

        asyncio.run(until(lambda: not any(alive(pid) for pid in replicas), timeout=5.0))
        assert port_free(stack.port)
    finally:
        for pid in replicas:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
