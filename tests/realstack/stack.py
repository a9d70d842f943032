"""The four services as separate processes on Kafka, PostgreSQL and MariaDB, for tests.

Each stack gets scratch databases and freshly created topics, so runs never see each
other's data; the infrastructure itself is what `make infra-up` started.
"""

import asyncio
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ordersaga.config import Settings
from ordersaga.runtime.processes import CLI as PROCESS_CLI
from ordersaga.runtime.processes import free_port
from ordersaga.runtime.scratch import (
    delete_topics,
    drop_databases,
    recreate_databases,
    scratch_environment,
    scratch_urls,
)

CLI = list(PROCESS_CLI)
SCRATCH_NAME = "{database}_test_"


@dataclass
class Stack:
    logs: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    kafka: str = field(default_factory=lambda: Settings().kafka_bootstrap_servers)
    """The bootstrap servers of the Kafka the stack runs on (the single node by default)."""
    replication: int = 1
    """ORDERSAGA_KAFKA_REPLICATION_FACTOR for the services."""
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def settings(self) -> Settings:
        """The settings of this stack's Kafka (the databases' are the configured ones)."""
        return Settings(
            kafka_bootstrap_servers=self.kafka, kafka_replication_factor=self.replication
        )

    def prepare(self) -> None:
        """Scratch databases with the schema and the sample data; empty topics."""
        asyncio.run(recreate_databases(self.urls))
        asyncio.run(delete_topics(self.settings))
        self.env = {
            **os.environ,
            "ORDERSAGA_API_PORT": str(self.port),
            "ORDERSAGA_METRICS_PORT": "0",
            "ORDERSAGA_ADMIN_PORT": str(self.admin_port),
            "ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "ORDERSAGA_KAFKA_REPLICATION_FACTOR": str(self.replication),
            **scratch_environment(self.settings, SCRATCH_NAME + self.suffix),
        }
        self.cli("db", "upgrade")
        self.cli("seed")

    @property
    def urls(self) -> dict[str, str]:
        """The stack's databases as their owner logs in (create, drop, read from tests)."""
        return scratch_urls(self.settings, SCRATCH_NAME + self.suffix)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"ordersaga {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def start(self, service: str, replica: int = 1) -> None:
        name = f"{service}-{replica}"
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [*CLI, "serve", service, "--replica", str(replica)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_all(self, replicas: int = 1) -> None:
        """Every replica started, and ready: the API answers, and each other replica
        created its topics (each service creates its own) and consumes."""
        services = ("order", "orchestrator", "stock", "payment")
        for service in services:
            for replica in range(1, replicas + 1):
                self.start(service, replica)
        self.wait_ready()
        for service in services[1:]:
            for replica in range(1, replicas + 1):
                self.wait_logged(f"{service}-{replica}", f"{service} replica {replica} ready", 1)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                if httpx.get(f"{self.api}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the order service did not become ready\n{self.log_tails()}")

    def assert_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        assert not dead, f"replicas exited: {dead}\n{self.log_tails()}"

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, no offset commit, transactions cut off."""
        self.processes.pop(name).send_signal(signal.SIGKILL)

    def terminate(self, name: str, timeout: float = 30) -> float:
        """SIGTERM, as a deployment stops a replica; seconds until it exited (cleanly)."""
        process = self.processes.pop(name)
        started = time.monotonic()
        process.terminate()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"{name} did not stop within {timeout} s of SIGTERM") from None
        assert code == 0, f"{name} exited with {code} on SIGTERM\n{self.log_tails()}"
        return time.monotonic() - started

    def wait_logged(self, name: str, text: str, count: int, timeout: float = 60) -> None:
        """Wait until ``text`` appears ``count`` times in replica ``name``'s log."""
        path = self.logs / f"{name}.log"
        deadline = time.monotonic() + timeout
        while path.read_text(errors="replace").count(text) < count:
            self.assert_alive()
            assert time.monotonic() < deadline, f"{name} never logged {text!r}\n{self.log_tails()}"
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"{name} did not stop on SIGTERM") from None
        self.processes.clear()

    def drop(self) -> None:
        asyncio.run(drop_databases(self.urls))

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)
