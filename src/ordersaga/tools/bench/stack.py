"""The systems a benchmark runs against, each started and stopped by the bench.

- :class:`RealStack`: scratch databases on the configured PostgreSQL and MariaDB
  servers, the saga topics deleted and recreated on the configured Kafka, and the four
  services as ``ordersaga serve`` child processes (``replicas`` of each).
- :class:`EmbeddedStack`: ``ordersaga up --embedded`` as one child process on a
  temporary data directory, its SQLite files written with the bench data beforehand.
- :class:`NullChain`: the forwarding stages of :mod:`ordersaga.tools.bench.null_chain`.
"""

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.auth import setup as auth_setup
from ordersaga.auth.tokens import LocalTokens
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.db.grants import grant_runtime
from ordersaga.db.migrate import seed, upgrade
from ordersaga.runtime.embedded import embedded_engines
from ordersaga.runtime.processes import (
    CLI,
    ChildProcess,
    NotReady,
    environment,
    free_port,
    replica_process,
    stop_all,
    wait_ready,
)
from ordersaga.runtime.scratch import (
    delete_topics,
    drop_databases,
    recreate_databases,
    scratch_environment,
    scratch_urls,
)
from ordersaga.services.registry import SERVICE_NAMES, service
from ordersaga.tools.bench import null_chain
from ordersaga.tools.bench.data import add_bench_data, prepare_embedded_data

SCRATCH_NAME = "{database}_test_bench"
"""The bench's databases, next to the configured ones (``orders_test_bench``...): the
ordersaga user `make infra-up` creates may create only ``orders_test*`` on MariaDB."""


class BenchError(Exception):
    """The bench cannot run: a server refused, a process did not start..."""


class _ChildProcesses:
    """What every stack does with its child processes: name their PIDs, stop them."""

    children: list[ChildProcess]

    def process_groups(self) -> dict[str, list[int]]:
        return {c.name: [c.pid] for c in self.children if c.pid is not None}

    async def stop(self) -> None:
        await stop_all(self.children)


class _ServedSystem(_ChildProcesses):
    """A system behind the order API on ``port``, whose databases the bench reads."""

    tokens: LocalTokens | None
    """Tokens the system's API accepts (none when authentication is disabled)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.engines: dict[str, AsyncEngine] = {}
        self.children = []

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _stop_and_dispose(self) -> None:
        await self.stop()
        for engine in self.engines.values():
            await engine.dispose()


class RealStack(_ServedSystem):
    """The services on Kafka, PostgreSQL and MariaDB, on scratch databases."""

    system = "real"

    def __init__(
        self,
        settings: Settings,
        replicas: int,
        log_dir: Path,
        keep: bool,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.replicas = replicas
        self.log_dir = log_dir
        self.keep = keep
        self.urls = scratch_urls(settings, SCRATCH_NAME)
        self.tokens = auth_setup.client_tokens(settings)
        self.env = environment(
            {
                "ORDERSAGA_API_PORT": str(self.port),
                "ORDERSAGA_ADMIN_PORT": str(free_port()),
                **scratch_environment(settings, SCRATCH_NAME),
                **(extra_env or {}),
            }
        )
        self._created = False

    async def prepare(self) -> None:
        """Empty databases with schema, seed and bench data; the saga topics emptied."""
        self._created = True
        try:
            await self._prepare()
        except (OSError, DBAPIError, KafkaError) as error:
            reason = getattr(error, "orig", None) or error
            raise BenchError(
                f"cannot prepare the real stack: {reason!r}. Are Kafka, PostgreSQL and "
                "MariaDB running (`make infra-up`) and the ORDERSAGA_* settings right?"
            ) from error

    async def _prepare(self) -> None:
        await recreate_databases(self.urls)
        await delete_topics(self.settings)
        # what `ordersaga db upgrade` and `ordersaga seed` run, without two interpreters
        for name, url in self.urls.items():
            await upgrade(service(name), url)
            await grant_runtime(url, service(name).database_url(self.settings))
            await seed(service(name), url)
        self.engines = {s: make_engine(url) for s, url in self.urls.items()}
        await add_bench_data(self.engines)

    async def start(self, ready_timeout: float) -> None:
        self.children = [
            replica_process(s, n, self.log_dir, self.env)
            for s in SERVICE_NAMES
            for n in range(1, self.replicas + 1)
        ]
        for child in self.children:
            await child.start()
        await wait_ready(self.api, ready_timeout, watch=self.children)

    async def close(self) -> None:
        """Stop the services, let go of the databases and drop them (unless kept)."""
        await self._stop_and_dispose()
        if self._created and not self.keep:
            await drop_databases(self.urls)


class EmbeddedStack(_ServedSystem):
    """``ordersaga up --embedded`` in a child process, on a temporary data directory."""

    system = "embedded"

    def __init__(self, settings: Settings, log_dir: Path, keep: bool) -> None:
        super().__init__()
        self.settings = settings
        self.log_dir = log_dir
        self.keep = keep
        self.data_dir = Path(tempfile.mkdtemp(prefix="ordersaga-bench-"))
        self.tokens = auth_setup.client_tokens(settings, self.data_dir)

    async def prepare(self) -> None:
        await prepare_embedded_data(self.data_dir, self.settings)
        self.engines = embedded_engines(self.data_dir)

    async def start(self, ready_timeout: float) -> None:
        argv = [*CLI, "up", "--embedded", "--data-dir", str(self.data_dir)]
        argv += ["--port", str(self.port), "--admin-port", str(free_port())]
        # No metrics port: the bench reads none, and must not contend for one.
        no_metrics_port = {**os.environ, "ORDERSAGA_METRICS_PORT": "0"}
        self.children = [ChildProcess("embedded", argv, self.log_dir, no_metrics_port)]
        await self.children[0].start()
        await wait_ready(self.api, ready_timeout, watch=self.children)

    async def close(self) -> None:
        await self._stop_and_dispose()
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class NullChain(_ChildProcesses):
    """The null chain's four stages as child processes on the configured Kafka."""

    system = "null-chain"

    def __init__(self, settings: Settings, log_dir: Path, in_flight: int) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.ready = log_dir / "null-chain.ready"
        self.result = log_dir / "null-chain.json"
        module = (sys.executable, "-m", "ordersaga.tools.bench.null_chain")
        source = [*module, null_chain.SOURCE, "--in-flight", str(in_flight)]
        source += ["--ready", str(self.ready), "--result", str(self.result)]
        self.source = ChildProcess(f"null-{null_chain.SOURCE}", source, log_dir)
        self.stages = [
            ChildProcess(f"null-{stage}", (*module, stage), log_dir)
            for stage in null_chain.STAGES
            if stage != null_chain.SOURCE
        ]
        self.children = [self.source, *self.stages]

    async def start(self, ready_timeout: float) -> None:
        """Empty topics, the stages, then the source once a saga has gone through."""
        self.ready.unlink(missing_ok=True)
        self.result.unlink(missing_ok=True)
        await delete_topics(self.settings)
        for child in self.children:
            await child.start()
        deadline = time.monotonic() + ready_timeout
        while not self.ready.exists():
            dead = [c for c in self.children if not c.running]
            if dead:
                raise NotReady(f"{dead[0].name} exited while starting:\n{dead[0].log_tail()}")
            if time.monotonic() > deadline:
                raise NotReady(f"the null chain did not carry a saga in {ready_timeout:g}s")
            await asyncio.sleep(0.1)

    async def finish(self, timeout: float) -> None:
        """Stop the source (it waits for its sagas, then writes them), then the stages;
        then delete the topics, so no service ever reads the chain's messages."""
        await self.source.stop(grace=timeout)
        await stop_all(self.stages)
        await delete_topics(self.settings)
