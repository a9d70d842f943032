"""Running the system's processes from a tool (chaos runs, benchmarks): ``ordersaga``
children with their logs, readiness of the order API, and a steady order load.

Every child asks the kernel to send it SIGTERM when the tool dies, so not even a tool
killed with SIGKILL leaves replicas behind.
"""

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

from ordersaga.auth.tokens import LocalTokens
from ordersaga.config import SAMPLE_BALANCES, SAMPLE_PRICES, Settings
from ordersaga.runtime.metrics import replica_metrics_port

CLI = (sys.executable, "-m", "ordersaga.cli")
_PR_SET_PDEATHSIG = 1


class NotReady(Exception):
    """The order API did not answer /readyz in time, or a child died while starting."""


def die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_url(settings: Settings) -> str:
    """The order API's base URL as a client on this host reaches it."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "") else settings.api_host
    return f"http://{host}:{settings.api_port}"


class ChildProcess:
    """One child process, its output appended to ``log_dir/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = tuple(argv)
        self.env = dict(env) if env is not None else None
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        """Start it (again): a restarted child appends to the same log."""
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            preexec_fn=die_with_parent,
        )

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no offset commit, transactions cut off."""
        if self.process is not None and self.running:
            self.process.kill()
            await self.process.wait()

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the log is closed either way."""
        try:
            if self.process is not None and self.running:
                self.process.terminate()
                try:
                    await asyncio.wait_for(self.process.wait(), grace)
                except TimeoutError:
                    await self.kill()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` of the child's log, for an error message."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def replica_process(
    service: str,
    number: int,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    metrics_port: int = 0,
) -> ChildProcess:
    """``ordersaga serve SERVICE --replica NUMBER``, named ``SERVICE-NUMBER``; its metrics
    on its port under the base ``metrics_port`` as ``ordersaga up`` gives them
    (:func:`~ordersaga.runtime.metrics.replica_metrics_port`), or on none if that is 0,
    so that replicas on one host never contend for one port."""
    port = replica_metrics_port(metrics_port, service, number) if metrics_port else 0
    environment = {**(os.environ if env is None else env), "ORDERSAGA_METRICS_PORT": str(port)}
    argv = (*CLI, "serve", service, "--replica", str(number))
    return ChildProcess(f"{service}-{number}", argv, log_dir, environment)


async def stop_all(children: Sequence[ChildProcess], grace: float = 20.0) -> None:
    """Stop every child at once; each gets ``grace`` seconds after its SIGTERM."""
    await asyncio.gather(*(c.stop(grace) for c in children), return_exceptions=True)


async def wait_ready(
    api: str, timeout: float, watch: Sequence[ChildProcess] = (), interval: float = 0.3
) -> None:
    """Return once ``api``/readyz answers 200; :class:`NotReady` after ``timeout`` seconds
    or as soon as one of ``watch`` has exited."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=api, timeout=2) as http:
        while time.monotonic() < deadline:
            dead = [c for c in watch if c.process is not None and not c.running]
            if dead:
                child = dead[0]
                raise NotReady(
                    f"{child.name} exited with code {child.returncode} while starting; "
                    f"the end of {child.log_path}:\n{child.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(interval)
    raise NotReady(f"the order service at {api} was not ready in {timeout:g}s")


def sample_order(rng: random.Random) -> dict[str, int]:
    """An order body for the sample data: any user, any product, one or two units."""
    return {
        "userID": rng.choice(list(SAMPLE_BALANCES)),
        "productID": rng.choice(list(SAMPLE_PRICES)),
        "quantity": rng.randint(1, 2),
    }


class OrderLoad:
    """Places orders at a steady rate, each retried with its Idempotency-Key through
    connection failures, 5xx and 429 answers for up to ``give_up`` seconds; each as its
    user, with a token from ``tokens`` (none when authentication is disabled)."""

    def __init__(
        self,
        api: str,
        rate: float,
        rng: random.Random,
        key_prefix: str,
        pick: Callable[[random.Random], dict[str, int]] = sample_order,
        tokens: LocalTokens | None = None,
    ) -> None:
        self._api = api
        self._tokens = tokens
        self._rate = rate
        self._rng = rng
        self._prefix = key_prefix
        self._pick = pick
        self.placed = 0
        self.accepted: set[str] = set()

    async def run(self, stop: asyncio.Event, give_up: float) -> None:
        """Place orders until ``stop`` is set; wait for those placed to be taken."""
        start = time.monotonic()
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=self._api, timeout=5, limits=limits) as http:
            tasks: list[asyncio.Task[None]] = []
            while not stop.is_set():
                body = self._pick(self._rng)
                key = f"{self._prefix}-{self.placed}"
                self.placed += 1
                deadline = time.monotonic() + give_up
                tasks.append(asyncio.create_task(self._place(http, body, key, deadline)))
                pause = self.placed / self._rate - (time.monotonic() - start)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, pause))
            await asyncio.gather(*tasks)

    async def _place(
        self, http: httpx.AsyncClient, body: dict[str, int], key: str, deadline: float
    ) -> None:
        while time.monotonic() < deadline:
            pause = 0.3
            headers = {"Idempotency-Key": key}
            if self._tokens is not None:
                headers["Authorization"] = f"Bearer {self._tokens.for_user(body['userID'])}"
            with contextlib.suppress(httpx.TransportError):
                response = await http.post("/api/v1/orders", json=body, headers=headers)
                if response.status_code in (200, 201):
                    self.accepted.add(str(response.json()["orderID"]))
                    return
                if response.status_code == 429:  # over the client's rate: nothing placed
                    pause = float(response.headers.get("Retry-After", "1"))
                elif response.status_code < 500:  # refused for good: not retried
                    return
            await asyncio.sleep(pause)


def environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``overrides``, for children."""
    return {**os.environ, **overrides}
