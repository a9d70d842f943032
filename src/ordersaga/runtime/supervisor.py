"""``ordersaga up``: every service as its own process, logs prefixed, stopped together.

The replicas log in the format the supervisor hands them: readable lines when it runs on
a terminal (each shown after its replica's name), JSON lines elsewhere (passed on as
they are: each names its service and replica).

Nothing is restarted silently: when a replica exits on its own, the supervisor says
which one and how, stops the others and exits non-zero. Every replica asks the kernel
for SIGTERM when the supervisor dies, so a supervisor killed with SIGKILL leaves no
replica behind to serve the port or join the consumer groups of the next one.
"""

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ordersaga.runtime.metrics import replica_metrics_port
from ordersaga.runtime.processes import die_with_parent
from ordersaga.services.registry import SERVICE_NAMES

ShowLine = Callable[[str, str, str], None]
"""Shows one line a replica wrote: the replica's name (``order-1``), its service, the line."""
Say = Callable[[str], None]
"""Tells the person at the terminal what the supervisor did."""


@dataclass
class Child:
    name: str
    service: str
    process: asyncio.subprocess.Process


async def _spawn(service: str, replica: int, metrics_port: int, log_format: str) -> Child:
    """Start replica ``replica`` of ``service``, logging in ``log_format``, its metrics on
    its own port under the base ``metrics_port`` (0: none)."""
    port = replica_metrics_port(metrics_port, service, replica) if metrics_port else 0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ordersaga.cli",
        "serve",
        service,
        "--replica",
        str(replica),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=die_with_parent,
        env={
            **os.environ,
            "ORDERSAGA_METRICS_PORT": str(port),
            "ORDERSAGA_LOG_FORMAT": log_format,
        },
    )
    return Child(f"{service}-{replica}", service, process)


async def _relay_output(child: Child, show: ShowLine) -> None:
    assert child.process.stdout is not None
    async for raw in child.process.stdout:
        show(child.name, child.service, raw.decode(errors="replace").rstrip())


async def supervise(
    show: ShowLine,
    say: Say,
    replicas: int = 1,
    grace: float = 15.0,
    metrics_port: int = 0,
    *,
    log_format: str = "json",
) -> int:
    """Run ``replicas`` of every service until Ctrl-C (exit 0) or one exits (exit 1);
    each serves its metrics on its port under ``metrics_port``
    (:func:`~ordersaga.runtime.metrics.replica_metrics_port`), none if that is 0, and
    logs in ``log_format`` (``ORDERSAGA_LOG_FORMAT``)."""
    children = [
        await _spawn(s, r, metrics_port, log_format)
        for s in SERVICE_NAMES
        for r in range(1, replicas + 1)
    ]
    output = [asyncio.create_task(_relay_output(c, show)) for c in children]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    exits = {asyncio.create_task(c.process.wait()): c for c in children}
    stop_wait = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([stop_wait, *exits], return_when=asyncio.FIRST_COMPLETED)
    status = 0
    for task in done:
        if task in exits:
            child = exits[task]
            say(f"{child.name} exited with code {child.process.returncode}; stopping the others.")
            status = 1
    await _stop_all(children, grace)
    stop_wait.cancel()
    await asyncio.gather(*output, return_exceptions=True)
    return status


async def _stop_all(children: list[Child], grace: float) -> None:
    for child in children:
        if child.process.returncode is None:
            child.process.terminate()
    waits = [c.process.wait() for c in children]
    try:
        await asyncio.wait_for(asyncio.gather(*waits), grace)
    except TimeoutError:
        for child in children:
            if child.process.returncode is None:
                child.process.kill()
        await asyncio.gather(*(c.process.wait() for c in children))
