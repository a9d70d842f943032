"""One service replica as its own process, on Kafka and the service's real database."""

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from types import FrameType

import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.auth import setup as auth_setup
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.dead_letters import KAFKA_LIMITS
from ordersaga.messaging.factory import make_broker
from ordersaga.messaging.kafka_config import client_options, for_service
from ordersaga.messaging.kafka_login import login_refusal
from ordersaga.messaging.port import Broker
from ordersaga.messaging.replication import ReplicationMismatch, check_replication
from ordersaga.messaging.stopping import Deadline, bounded
from ordersaga.messaging.transient import login_refused
from ordersaga.observability.metrics import Metrics
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.observability.serving import MetricsServer, serve_metrics
from ordersaga.observability.tracing import tracing_from_env
from ordersaga.runtime.admin import AdminServer, admin_app, bind_admin, listening_line
from ordersaga.runtime.collector import collect_garbage_less
from ordersaga.runtime.ports import bind_api
from ordersaga.runtime.service import ServiceReplica, relay_limits
from ordersaga.runtime.startup_logs import StartupNoise
from ordersaga.services.base import run_startup_checks
from ordersaga.services.orchestrator.wiring import place_order_runner
from ordersaga.services.order.api import create_app, server_config
from ordersaga.services.order.routers.health import add_readiness_check
from ordersaga.services.registry import database_url, service_spec

log = logging.getLogger(__name__)


async def serve(
    service: str, settings: Settings, replica: str, noise: StartupNoise | None = None
) -> None:
    """Run one replica of ``service`` until SIGTERM or SIGINT; then stop cleanly.

    The schema must be there already (``ordersaga db upgrade``). Any number of replicas
    may run at once: their consumer group shares the partitions. The order replica binds
    the API's port first, so a port in use (:class:`PortInUse`) ends it before anything
    starts. ``noise`` is told while the replica waits for Kafka.

    Its metrics are served on ``ORDERSAGA_METRICS_PORT`` unless that is 0 (a port in
    use, :class:`~ordersaga.observability.serving.MetricsPortInUse`, ends it at once too),
    and the order replica's also on the API's ``/metrics``.
    """
    settings = for_service(settings, service)  # its own Kafka user, if configured
    sock = admin_sock = None
    if service == "order":
        sock = bind_api(settings.api_host, settings.api_port, shared=True)
    if service == "orchestrator":
        admin_sock = bind_admin(settings, shared=True)
    metrics = ServiceMetrics(Metrics(), service, replica)
    # What the metrics port's /readyz says: not ready until consuming, nor once stopping.
    phase: list[str | None] = ["starting"]

    def readiness() -> str | None:
        return phase[0] or running.endpoint.relay.publish_problem()

    exposed: MetricsServer | None = None
    if settings.metrics_port:
        try:
            exposed = serve_metrics(
                metrics.metrics.registry, settings.metrics_host, settings.metrics_port, readiness
            )
        except OSError:
            for bound in (sock, admin_sock):
                if bound is not None:
                    bound.close()
            raise
    spec = service_spec(service, settings, metrics)
    url = database_url(settings, service)
    engine = make_engine(url)
    broker = make_broker(settings)
    running = ServiceReplica(
        spec,
        engine,
        broker,
        replica=replica,
        relay_limits=relay_limits(settings),
        metrics=metrics,
        metrics_interval=settings.metrics_interval,
        tracing=tracing_from_env(service, replica, os.environ),
    )
    where_metrics = f"metrics on {exposed.url}" if exposed else "no metrics port"
    stopping: Deadline | None = None
    admin: AdminServer | None = None
    try:
        await _wait_for_database(engine, service, url)
        await run_startup_checks(spec, engine)
        await _create_topics(broker, settings, service, spec.topics, noise)
        running.start()
        collect_garbage_less()
        if admin_sock is not None:
            runner = place_order_runner(settings)
            verifier = auth_setup.verifier(settings)
            app = admin_app(
                running.endpoint.transactions, runner, broker, KAFKA_LIMITS, verifier=verifier
            )
            admin = await AdminServer.start(app, admin_sock, settings.shutdown_grace / 4)
            if admin.started:
                line = listening_line(admin_sock, authenticated=verifier is not None)
                log.info("orchestrator replica %s: %s", replica, line)
        phase[0] = None
        if sock is not None:
            name = f"{service} replica {replica}"
            stopping = await _serve_api(running, settings, sock, name, where_metrics)
        else:
            consumed = ", ".join(sorted({s.topic for s in spec.subscriptions}))
            log.info(
                "%s replica %s ready: consuming %s; %s", service, replica, consumed, where_metrics
            )
            await _until_signalled()
    finally:
        phase[0] = "stopping"
        if admin is not None:
            await admin.stop()
        for bound in (sock, admin_sock):
            if bound is not None:
                bound.close()
        if exposed is not None:
            exposed.close()
        stopping = stopping or Deadline(settings.shutdown_grace)
        log.info("%s replica %s stopping (within %.0fs)", service, replica, stopping.remaining())
        await running.stop(stopping.until(0.9))
        await bounded(broker.close(), max(1.0, stopping.remaining()), "closing the broker")
        await bounded(engine.dispose(), max(1.0, stopping.remaining()), "closing the database")
        log.info("%s replica %s stopped", service, replica)


class LoginRefused(RuntimeError):
    """The database or Kafka refused the service's login: its settings are wrong,
    waiting will not help."""


def _kafka_login_hint(service: str) -> str:
    own = f"ORDERSAGA_{service.upper()}_KAFKA_SASL"
    return (
        f"Check {own}_USERNAME and {own}_PASSWORD (or _PASSWORD_FILE), or "
        "ORDERSAGA_KAFKA_SASL_USERNAME and its password when the service has no user of its own"
    )


async def _wait_for_database(engine: AsyncEngine, service: str, url: str) -> None:
    """Wait until the database answers; say once what is awaited, and when it answers."""
    backoff = Backoff(first=0.5, cap=5.0)
    waiting = False
    while True:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError) as error:
            where = make_url(url).render_as_string(hide_password=True)
            if login_refused(error):
                raise LoginRefused(
                    f"{service}'s database at {where} refused the login: "
                    f"{' '.join(str(getattr(error, 'orig', None) or error).split())[:160]}. "
                    f"Check ORDERSAGA_{service.upper()}_DB_URL and its password "
                    f"(ORDERSAGA_{service.upper()}_DB_PASSWORD or _PASSWORD_FILE)"
                ) from None
            if not waiting:
                log.warning(
                    "waiting for %s's database at %s (%s); `make infra-up` starts the "
                    "local servers. Retrying quietly.",
                    service,
                    where,
                    " ".join(str(getattr(error, "orig", None) or error).split())[:160],
                )
                waiting = True
            await backoff.sleep()
            continue
        if waiting:
            log.info("%s's database answers", service)
        return


async def _create_topics(
    broker: Broker,
    settings: Settings,
    service: str,
    names: Sequence[str],
    noise: StartupNoise | None = None,
) -> None:
    """Create the topics ``names`` (``service``'s own: those its principal may create),
    waiting for the broker if it is not up yet: said once, then retried quietly
    (aiokafka's connection errors are held back meanwhile); then check they have the
    replication the settings ask for.

    Raises :class:`ReplicationMismatch` when they do not: a replica that ran on them
    would acknowledge messages a single broker's loss can take away; and
    :class:`LoginRefused` when Kafka refuses the service's login, which waiting would
    not change.
    """
    backoff = Backoff(first=0.5, cap=5.0)
    waiting = False
    unknown_since: float | None = None
    if noise is not None:
        noise.waiting_for_kafka = True  # until the topics are there: said below, once
    try:
        while True:
            try:
                await broker.create_topics(names, settings.partitions)
                await check_replication(
                    client_options(settings), names, settings.kafka_replication_factor
                )
                break
            except ReplicationMismatch as mismatch:
                # Topics just created may not be in every broker's metadata yet: only
                # topics still unknown after a while are a mismatch.
                now = time.monotonic()
                unknown_since = unknown_since or now
                if len(mismatch.unknown) < len(mismatch.problems) or now - unknown_since > 30:
                    raise
                await backoff.sleep()
            except Exception as error:  # the broker may still be starting
                if not waiting:
                    refusal = await login_refusal(settings)
                    if refusal is not None:
                        raise LoginRefused(f"{refusal}. {_kafka_login_hint(service)}") from None
                    log.warning(
                        "waiting for Kafka at %s (%r); `make infra-up` starts the local "
                        "servers. Retrying quietly.",
                        settings.kafka_bootstrap_servers,
                        error,
                    )
                    waiting = True
                await backoff.sleep()
    finally:
        if noise is not None:
            noise.waiting_for_kafka = False
    if waiting:
        log.info("Kafka at %s answers", settings.kafka_bootstrap_servers)


def _on_stop_signals(handler: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    _on_stop_signals(stop.set)
    await stop.wait()


async def _serve_api(
    running: ServiceReplica,
    settings: Settings,
    sock: socket.socket,
    name: str,
    where_metrics: str,
) -> Deadline:
    """Serve until SIGTERM or SIGINT; then stop taking connections, answer the requests
    in flight within a quarter of the shutdown grace, and return the deadline of the
    whole stop, which began with the signal."""
    app = create_app(
        running.endpoint.transactions,
        settings,
        verifier=auth_setup.verifier(settings),
        metrics=running.metrics,
    )
    add_readiness_check(app, running.endpoint.relay.publish_problem)
    config = server_config(
        app,
        keep_alive=settings.api_keep_alive,
        graceful_shutdown=settings.shutdown_grace / 4,
    )
    server = _Server(config)
    # uvicorn captures SIGINT/SIGTERM while it serves and raises them again when it is
    # done; with handlers of our own in place that second raise does not end the process
    # before the replica has stopped.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not (server.started or serving.done()):
        await asyncio.sleep(0.01)  # uvicorn has no event for "listening"
    if server.started:
        host, port = sock.getsockname()[:2]
        log.info(
            "%s ready: API on http://%s:%s (docs at /docs); %s", name, host, port, where_metrics
        )
    await serving
    since = time.monotonic() - (server.signalled_at or time.monotonic())
    return Deadline(settings.shutdown_grace - since)


class _Server(uvicorn.Server):
    """Notes when it was told to stop: the replica's shutdown grace runs from then."""

    signalled_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        super().handle_exit(sig, frame)
