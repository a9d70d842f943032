"""``ordersaga up`` (the whole system) and ``ordersaga serve`` (one replica)."""

import logging
import os
import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape

from ordersaga.cli.running import run_on_uvloop
from ordersaga.cli.services import ServiceName
from ordersaga.config import Settings
from ordersaga.runtime.embedded import EmbeddedSystem
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
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on.")] = 8091,
) -> None:
    """Run the whole system until Ctrl-C: one process per service replica on Kafka,
    PostgreSQL and MariaDB, or everything in this process with --embedded."""
    if embedded:
        run_on_uvloop(_serve_embedded(data_dir, host, port))
        return
    from ordersaga.runtime.supervisor import supervise

    raise typer.Exit(run_on_uvloop(supervise(show_line, say_stopping, replicas)) or 0)


def show_line(replica: str, service: str, line: str) -> None:
    """One line of a replica's output, after its name in its service's colour."""
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
    from ordersaga.runtime.distributed import serve as serve_replica

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from ordersaga.messaging.replication import ReplicationMismatch

    name = replica or f"{socket.gethostname()}-{os.getpid()}"
    try:
        run_on_uvloop(serve_replica(service, Settings(), name))
    except ReplicationMismatch as error:
        console.print(str(error), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


async def _serve_embedded(data_dir: Path, host: str, port: int) -> None:
    async with EmbeddedSystem(data_dir, Settings()) as system:
        config = server_config(system.app, host=host, port=port)
        server = uvicorn.Server(config)
        console.print(
            f"ordersaga (embedded) on [bold]http://{host}:{port}[/] — API docs at /docs, "
            f"data in {data_dir.resolve()}. Ctrl-C stops it."
        )
        await server.serve()
    console.print("stopped.")
