"""The whole system in one process: four services on one in-process broker, SQLite each.

This is only another wiring of the same service code the distributed mode runs: every
service keeps its own database file and talks to the others only through topics.
"""

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.auth import setup as auth_setup
from ordersaga.auth.tokens import LocalTokens
from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.consumer import CrashPoints
from ordersaga.messaging.dead_letters import EMBEDDED_LIMITS
from ordersaga.messaging.endpoint import Endpoint
from ordersaga.messaging.memory import BROKER_FILE, InProcessBroker
from ordersaga.observability.metrics import Metrics
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.observability.tracing import Tracing, tracing_from_env
from ordersaga.runtime.admin import admin_app
from ordersaga.runtime.service import ServiceReplica, relay_limits
from ordersaga.services.base import ServiceSpec, run_startup_checks
from ordersaga.services.orchestrator.tables import count_open_sagas
from ordersaga.services.orchestrator.wiring import place_order_runner
from ordersaga.services.order.api import create_app
from ordersaga.services.order.tables import orders
from ordersaga.services.registry import SERVICE_NAMES, service_spec


def database_path(data_dir: Path, service: str) -> Path:
    return data_dir / f"{service}.sqlite3"


def embedded_engines(data_dir: Path) -> dict[str, AsyncEngine]:
    """Engines on the embedded system's databases under ``data_dir`` (for tools)."""
    return {name: make_engine(sqlite_url(database_path(data_dir, name))) for name in SERVICE_NAMES}


EngineWrapper = Callable[[str, AsyncEngine], AsyncEngine]
"""Given a service's name and engine, the engine its consumer, relay, loops and API use."""

TracingFactory = Callable[[str], Tracing]
"""Given a service's name, where its spans go."""


def tracing_from_environment(service: str) -> Tracing:
    """A service's tracing as the ``OTEL_*`` variables configure it."""
    return tracing_from_env(service, "1", os.environ)


class EmbeddedSystem:
    """Start with :meth:`start` (or ``async with``); the order API is :attr:`app`.

    The API requires tokens signed with the local key under ``data_dir`` (see
    :attr:`tokens`) unless the settings point elsewhere or disable authentication.
    The broker's log is kept under ``data_dir`` unless a ``broker`` is handed in, which
    then outlives the system (a test can restart the services on the same broker).
    An ``engine_wrapper`` stands between each service and its database (a test injects
    database faults there); :attr:`engines` are always the databases' own engines.
    ``specs`` replace services' configured specs (a test runs an orchestrator with
    definitions of its own). A service whose startup check fails (the orchestrator,
    when unfinished sagas need a definition version it lacks) fails :meth:`start`.

    Every service records into :attr:`metrics`, one registry for the process, told
    apart by the ``service`` label; the order API's ``/metrics`` serves all of it.
    Each service's spans go where ``tracing`` says (default: the ``OTEL_*`` variables).
    """

    def __init__(
        self,
        data_dir: Path,
        settings: Settings | None = None,
        *,
        crash_points: CrashPoints | None = None,
        broker: InProcessBroker | None = None,
        engine_wrapper: EngineWrapper | None = None,
        specs: Mapping[str, ServiceSpec] | None = None,
        tracing: TracingFactory = tracing_from_environment,
    ) -> None:
        self.data_dir = data_dir
        self._tracing = tracing
        self.settings = settings or Settings()
        self._crash_points = crash_points
        self._engine_wrapper = engine_wrapper
        self._specs = dict(specs or {})
        self._services: dict[str, ServiceReplica] = {}
        self._engines: dict[str, AsyncEngine] = {}
        self._broker = broker
        self._owns_broker = broker is None
        self._app: FastAPI | None = None
        self.metrics = Metrics()
        self._admin_app: FastAPI | None = None
        self.tokens: LocalTokens = auth_setup.local_tokens(self.settings, data_dir)
        """Tokens the APIs accept: signed with the local key under ``data_dir`` (or at
        ``ORDERSAGA_AUTH_KEY_FILE``)."""

    @property
    def broker(self) -> InProcessBroker:
        if self._broker is None:
            raise RuntimeError("the embedded system is not started")
        return self._broker

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            raise RuntimeError("the embedded system is not started")
        return self._app

    @property
    def admin_app(self) -> FastAPI:
        """The orchestrator's admin API."""
        if self._admin_app is None:
            raise RuntimeError("the embedded system is not started")
        return self._admin_app

    @property
    def engines(self) -> dict[str, AsyncEngine]:
        return dict(self._engines)

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {name: replica.endpoint for name, replica in self._services.items()}

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._owns_broker:
            broker_file = self.data_dir / BROKER_FILE
            self._broker = InProcessBroker(broker_file, self.settings.partitions)
        await self.broker.create_topics(topics.with_dead_letters(), self.settings.partitions)
        try:
            for name in SERVICE_NAMES:
                self._services[name] = await self._start_service(name)
        except BaseException:
            await self.stop()
            raise
        order_service = self._services["order"]
        verifier = auth_setup.verifier(self.settings, self.data_dir)
        self._app = create_app(
            order_service.endpoint.transactions,
            self.settings,
            verifier=verifier,
            metrics=order_service.metrics,
        )
        orchestrator = self._services["orchestrator"]
        self._admin_app = admin_app(
            orchestrator.endpoint.transactions,
            place_order_runner(self.settings),
            self.broker,
            EMBEDDED_LIMITS,
            verifier=verifier,
        )

    async def _start_service(self, name: str) -> ServiceReplica:
        metrics = ServiceMetrics(self.metrics, name)
        spec = self._specs.get(name) or service_spec(name, self.settings, metrics)
        engine = make_engine(sqlite_url(database_path(self.data_dir, name)))
        self._engines[name] = engine
        await create_schema(engine, spec.metadata)
        async with engine.begin() as conn:
            await spec.seed(conn)
        await run_startup_checks(spec, engine)
        if self._engine_wrapper is not None:
            engine = self._engine_wrapper(name, engine)
        replica = ServiceReplica(
            spec,
            engine,
            self.broker,
            crash_points=self._crash_points,
            relay_limits=relay_limits(self.settings),
            metrics=metrics,
            metrics_interval=self.settings.metrics_interval,
            tracing=self._tracing(name),
        )
        replica.start()
        return replica

    async def stop(self) -> None:
        for replica in self._services.values():
            await replica.stop()
        for engine in self._engines.values():
            await engine.dispose()
        self._services.clear()
        self._engines.clear()
        if self._broker is not None and self._owns_broker:
            await self._broker.close()
            self._broker = None

    async def __aenter__(self) -> "EmbeddedSystem":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def pending_orders(self) -> int:
        """Orders not yet COMPLETED or CANCELLED."""
        async with self._engines["order"].connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(orders).where(orders.c.status == "ORDER_CREATED")
            )
        return int(count or 0)

    async def open_sagas(self) -> int:
        """Sagas not yet COMPLETED or CANCELLED."""
        return await count_open_sagas(self._services["orchestrator"].engine)

    async def wait_until_quiet(self, timeout: float = 60.0, interval: float = 0.05) -> bool:
        """Wait until every order has a terminal status and every saga is finished;
        ``False`` if ``timeout`` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.pending_orders() or await self.open_sagas():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(interval)
        return True
