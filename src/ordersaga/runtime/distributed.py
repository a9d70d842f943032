"""One service replica as its own process, on Kafka and the service's real database."""

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import uvicorn

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.db.engine import make_engine
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.factory import make_broker
from ordersaga.messaging.kafka_config import client_options
from ordersaga.messaging.port import Broker
from ordersaga.messaging.replication import ReplicationMismatch, check_replication
from ordersaga.messaging.stopping import Deadline, bounded
from ordersaga.runtime.service import ServiceReplica, relay_limits
from ordersaga.services.base import run_startup_checks
from ordersaga.services.order.api import create_app, server_config
from ordersaga.services.order.routers.health import add_readiness_check
from ordersaga.services.registry import database_url, service_spec

log = logging.getLogger(__name__)


async def serve(service: str, settings: Settings, replica: str) -> None:
    """Run one replica of ``service`` until SIGTERM or SIGINT; then stop cleanly.

    The schema must be there already (``ordersaga db upgrade``). Any number of replicas
    may run at once: their consumer group shares the partitions.
    """
    spec = service_spec(service, settings)
    engine = make_engine(database_url(settings, service))
    broker = make_broker(settings)
    running = ServiceReplica(
        spec, engine, broker, replica=replica, relay_limits=relay_limits(settings)
    )
    stopping: Deadline | None = None
    try:
        await run_startup_checks(spec, engine)
        await _create_topics(broker, settings)
        running.start()
        log.info("%s replica %s started", service, replica)
        if service == "order":
            stopping = await _serve_api(running, settings)
        else:
            await _until_signalled()
    finally:
        stopping = stopping or Deadline(settings.shutdown_grace)
        log.info("%s replica %s stopping (within %.0fs)", service, replica, stopping.remaining())
        await running.stop(stopping.until(0.9))
        await bounded(broker.close(), max(1.0, stopping.remaining()), "closing the broker")
        await bounded(engine.dispose(), max(1.0, stopping.remaining()), "closing the database")
        log.info("%s replica %s stopped", service, replica)


async def _create_topics(broker: Broker, settings: Settings) -> None:
    """Create the contract's topics, waiting for the broker if it is not up yet; then
    check they have the replication the settings ask for.

    Raises :class:`ReplicationMismatch` when they do not: a replica that ran on them
    would acknowledge messages a single broker's loss can take away.
    """
    backoff = Backoff(first=0.5, cap=5.0)
    names = topics.with_dead_letters()
    while True:
        try:
            await broker.create_topics(names, settings.partitions)
            await check_replication(
                client_options(settings), names, settings.kafka_replication_factor
            )
            return
        except ReplicationMismatch:
            raise
        except Exception as error:  # the broker may still be starting
            log.warning("cannot create topics yet (%r); retrying", error)
            await backoff.sleep()


def _on_stop_signals(handler: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handler)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    _on_stop_signals(stop.set)
    await stop.wait()


def _shared_port(host: str, port: int) -> socket.socket:
    """A listening socket that other order replicas on this host can share (SO_REUSEPORT):
    the kernel spreads connections over them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def _serve_api(running: ServiceReplica, settings: Settings) -> Deadline:
    """Serve until SIGTERM or SIGINT; then stop taking connections, answer the requests
    in flight within a quarter of the shutdown grace, and return the deadline of the
    whole stop, which began with the signal."""
    app = create_app(running.engine, settings, running.wake_relay)
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
    sock = _shared_port(settings.api_host, settings.api_port)
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
    since = time.monotonic() - (server.signalled_at or time.monotonic())
    return Deadline(settings.shutdown_grace - since)


class _Server(uvicorn.Server):
    """Notes when it was told to stop: the replica's shutdown grace runs from then."""

    signalled_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        super().handle_exit(sig, frame)
