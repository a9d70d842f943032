"""``ordersaga up`` (the whole system) and ``ordersaga serve`` (one replica)."""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape

from ordersaga.auth import setup as auth_setup
from ordersaga.cli.errors import UNREACHABLE, USAGE, fail
from ordersaga.cli.running import run_on_uvloop
from ordersaga.cli.services import ServiceName
from ordersaga.config import Settings
from ordersaga.observability.logs import configure_logging
from ordersaga.observability.serving import MetricsPortInUse, MetricsServer, serve_metrics
from ordersaga.observability.tracing import TracingConfigError, check_tracing_env
from ordersaga.runtime.admin import (
    AdminNotLoopback,
    AdminServer,
    bind_admin,
    check_admin_host,
    listening_line,
)
from ordersaga.runtime.collector import collect_garbage_less
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.runtime.metrics import MAX_REPLICAS_WITH_PORTS
from ordersaga.runtime.ports import ADMIN_PORT_CHOICE, PortInUse, bind_api, check_port
from ordersaga.runtime.startup_logs import quiet_start
from ordersaga.services.order.api import server_config
from ordersaga.services.registry import SERVICE_NAMES

console = Console()

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red")
"""The colours of the services' log prefixes, in the registry's order."""

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where the embedded system keeps its databases.")
]


def up_command(
    embedded: Annotated[
        bool, typer.Option(help="All four services in this one process, on SQLite.")
    ] = False,
    replicas: Annotated[
        int, typer.Option(min=1, help="Processes per service (distributed mode).")
    ] = 1,
    data_dir: DataDir = Path("data"),
    host: Annotated[str, typer.Option(help="Address the embedded API listens on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help="Port the embedded API listens on (default ORDERSAGA_API_PORT)."),
    ] = None,
    admin_port: Annotated[
        int | None,
        typer.Option(
            help="Port the embedded admin API listens on (default ORDERSAGA_ADMIN_PORT)."
        ),
    ] = None,
) -> None:
    """Run the whole system until Ctrl-C or SIGTERM: one process per service replica on
    Kafka, PostgreSQL and MariaDB, or everything in this process with --embedded."""
    settings = Settings()
    _check_tracing()
    port = settings.api_port if port is None else port
    if admin_port is not None:
        settings = settings.model_copy(update={"admin_port": admin_port})
    try:
        check_admin_host(settings)
    except AdminNotLoopback as error:
        fail(str(error), USAGE)
    if embedded:
        try:
            sock = bind_api(host, port)
            admin_sock = bind_admin(settings)
        except PortInUse as error:
            fail(str(error), UNREACHABLE)
        run_on_uvloop(_serve_embedded(data_dir, sock, admin_sock, settings))
        return
    from ordersaga.runtime.supervisor import supervise

    try:
        check_port(settings.api_host, settings.api_port)
        check_port(settings.admin_host, settings.admin_port, ADMIN_PORT_CHOICE)
    except PortInUse as error:
        fail(str(error), UNREACHABLE)
    if settings.metrics_port and replicas > MAX_REPLICAS_WITH_PORTS:
        fail(
            f"--replicas {replicas}: each replica's metrics port is ORDERSAGA_METRICS_PORT + "
            f"10*service + replica, so at most {MAX_REPLICAS_WITH_PORTS} replicas a service "
            "get one; run fewer, or set ORDERSAGA_METRICS_PORT=0 for no metrics ports",
            USAGE,
        )
    # Replicas write readable lines for a person at the terminal, JSON for a collector.
    children_format = settings.log_format or ("console" if console.is_terminal else "json")
    supervising = supervise(
        show_line,
        say_stopping,
        replicas,
        metrics_port=settings.metrics_port,
        log_format=children_format,
    )
    raise typer.Exit(run_on_uvloop(supervising) or 0)


def show_line(replica: str, service: str, line: str) -> None:
    """One line of a replica's output, after its name in its service's colour; off a
    terminal a JSON line goes on as it is (it names its service and replica itself)."""
    if not console.is_terminal and line.startswith("{"):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return
    index = SERVICE_NAMES.index(service) if service in SERVICE_NAMES else -1
    colour = PALETTE[index % len(PALETTE)] if index >= 0 else "white"
    width = max(len(s) for s in SERVICE_NAMES) + 3
    console.print(
        f"[{colour}]{replica:<{width}}|[/] {escape(line)}", highlight=False, soft_wrap=True
    )


def say_stopping(text: str) -> None:
    console.print(f"[bold red]{escape(text)}[/]")


def serve_command(
    service: ServiceName,
    replica: Annotated[
        str | None, typer.Option(help="This replica's name (default: host-pid).")
    ] = None,
) -> None:
    """Run one replica of one service on Kafka and its database, until SIGTERM or Ctrl-C.

    Configured by ORDERSAGA_* environment variables (see .env.example); the schema must
    be in place (`ordersaga db upgrade`)."""
    from ordersaga.runtime.distributed import LoginRefused
    from ordersaga.runtime.distributed import serve as serve_replica

    settings = Settings()
    _check_tracing()
    name = replica or f"{socket.gethostname()}-{os.getpid()}"
    configure_logging(settings.log_format, service, f"{service}-{name}")
    from ordersaga.messaging.replication import ReplicationMismatch

    noise = quiet_start()
    try:
        run_on_uvloop(serve_replica(service, settings, name, noise))
    except (PortInUse, MetricsPortInUse) as error:
        fail(str(error), UNREACHABLE)
    except (ReplicationMismatch, LoginRefused, AdminNotLoopback) as error:
        fail(str(error), USAGE)


def _check_tracing() -> None:
    """Refuse to start on ``OTEL_*`` variables that ask for what cannot be done."""
    try:
        check_tracing_env(os.environ)
    except TracingConfigError as error:
        fail(str(error), USAGE)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the command stops it on SIGINT and
    SIGTERM alike, then stops the services, rather than having uvicorn raise the signal
    again once it is done (which ended the process with 143 on SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_embedded(
    data_dir: Path, sock: socket.socket, admin_sock: socket.socket, settings: Settings
) -> None:
    host, port = sock.getsockname()[:2]
    configure_logging(settings.log_format, "embedded", "1", level=logging.WARNING)
    stopping = asyncio.Event()
    with _on_stop_signals(stopping.set):
        try:
            async with EmbeddedSystem(data_dir, settings) as system:
                collect_garbage_less()
                exposed = _serve_embedded_metrics(system, settings)
                admin = await AdminServer.start(system.admin_app, admin_sock)
                server = _Server(server_config(system.app))
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                while not (server.started or serving.done() or stopping.is_set()):
                    await asyncio.sleep(0.01)  # uvicorn has no event for "listening"
                if server.started:
                    metrics = f"metrics on {exposed.url}" if exposed else "metrics at /metrics"
                    console.print(
                        f"ordersaga (embedded) on [bold]http://{host}:{port}[/] — API docs at "
                        f"/docs, {metrics}, data in {data_dir.resolve()}. Ctrl-C stops it."
                    )
                    console.print(_auth_line(settings, data_dir))
                if admin.started:
                    authenticated = settings.auth != "disabled"
                    console.print(escape(listening_line(admin_sock, authenticated)))
                waiting = asyncio.create_task(stopping.wait())
                try:
                    await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
                    server.should_exit = True
                    waiting.cancel()
                    await serving
                    await admin.stop()
                finally:
                    if exposed is not None:
                        exposed.close()
        finally:
            sock.close()
            admin_sock.close()
    console.print("stopped.")


def _serve_embedded_metrics(system: EmbeddedSystem, settings: Settings) -> MetricsServer | None:
    """Every service's metrics on the metrics port (``ORDERSAGA_METRICS_PORT``), if any."""
    if not settings.metrics_port:
        return None
    try:
        return serve_metrics(
            system.metrics.registry, settings.metrics_host, settings.metrics_port
        )
    except MetricsPortInUse as error:
        fail(str(error), UNREACHABLE)


def _auth_line(settings: Settings, data_dir: Path) -> str:
    """How a client gets in: a token, or nothing when authentication is disabled."""
    if settings.auth == "disabled":
        return f"[bold red]{escape(auth_setup.DISABLED_WARNING)}[/]"
    if settings.auth_jwks_url or settings.auth_jwks_file:
        return "Requests need a bearer token from the configured identity provider."
    where = "" if data_dir == auth_setup.DEFAULT_DATA_DIR else f" --data-dir {data_dir}"
    return f"Requests need a bearer token: [bold]ordersaga token --user 1{where}[/]"


@contextlib.contextmanager
def _on_stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on SIGINT or SIGTERM while inside."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
