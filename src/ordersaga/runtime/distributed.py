"""One service replica as its own process, on Kafka and the service's real database."""

import asyncio
import logging
import signal
import socket
from collections.abc import Callable

import uvicorn

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.db.engine import make_engine
from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.factory import make_broker
from ordersaga.messaging.port import Broker
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
    try:
        await run_startup_checks(spec, engine)
        await _create_topics(broker, settings)
        running.start()
        log.info("%s replica %s started", service, replica)
        if service == "order":
            await _serve_api(running, settings)
        else:
            await _until_signalled()
    finally:
        await running.stop()
        await broker.close()
        await engine.dispose()
        log.info("%s replica %s stopped", service, replica)


async def _create_topics(broker: Broker, settings: Settings) -> None:
    """Create the contract's topics, waiting for the broker if it is not up yet."""
    backoff = Backoff(first=0.5, cap=5.0)
    while True:
        try:
            await broker.create_topics(topics.with_dead_letters(), settings.partitions)
            return
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


async def _serve_api(running: ServiceReplica, settings: Settings) -> None:
    app = create_app(running.endpoint.transactions, settings)
    add_readiness_check(app, running.endpoint.relay.publish_problem)
    config = server_config(app)
    server = uvicorn.Server(config)
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
