"""The ``ordersaga`` command line."""

import asyncio
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
import uvicorn
import uvloop
from rich.console import Console

from ordersaga.bench.command import bench_command
from ordersaga.chaos_commands import chaos_command
from ordersaga.client import ApiError, OrderClient
from ordersaga.config import Settings
from ordersaga.db.commands import db_app, seed_command
from ordersaga.db.engine import make_engine
from ordersaga.messaging.dlq_commands import dlq_app
from ordersaga.outbox_commands import outbox_app
from ordersaga.report import checks_table, orders_table
from ordersaga.retention_commands import prune_command
from ordersaga.runtime.embedded import EmbeddedSystem, embedded_engines
from ordersaga.services.orchestrator.commands import sagas_app
from ordersaga.services.order.api import server_config

app = typer.Typer(
    help="The place-order saga, orchestrated over Kafka: order, stock, payment, orchestrator.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
T = TypeVar("T")

DEFAULT_API = "http://127.0.0.1:8091"
ApiUrl = Annotated[str, typer.Option("--api-url", help="Base URL of the order service.")]
DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where the embedded system keeps its databases.")
]


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="How many random orders to place.")] = 300,
    seed: Annotated[int | None, typer.Option(help="Seed for the random orders.")] = None,
) -> None:
    """Run the original demo's scenarios and random orders on a fresh embedded system."""
    from ordersaga.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="ordersaga-demo-") as data_dir:
        ok = asyncio.run(run_demo(console, Path(data_dir), orders, seed))
    raise typer.Exit(0 if ok else 1)


@app.command()
def up(
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
        _run(_serve_embedded(data_dir, host, port))
        return
    from ordersaga.runtime.supervisor import supervise

    raise typer.Exit(_run(supervise(console, replicas)) or 0)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="order, orchestrator, stock or payment.")],
    replica: Annotated[
        str | None, typer.Option(help="This replica's name (default: host-pid).")
    ] = None,
) -> None:
    """Run one replica of one service on Kafka and its database, until SIGTERM or Ctrl-C.

    Configured by ORDERSAGA_* environment variables (see .env.example); the schema must
    be in place (`ordersaga db upgrade`)."""
    from ordersaga.runtime.distributed import serve as serve_replica
    from ordersaga.services.base import SERVICE_NAMES

    if service not in SERVICE_NAMES:
        console.print(f"[red]Unknown service {service!r}: one of {', '.join(SERVICE_NAMES)}.[/]")
        raise typer.Exit(2)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from ordersaga.messaging.replication import ReplicationMismatch

    name = replica or f"{socket.gethostname()}-{os.getpid()}"
    try:
        _run(serve_replica(service, Settings(), name))
    except ReplicationMismatch as error:
        console.print(str(error), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _run(main: Coroutine[Any, Any, T]) -> T | None:
    """Run ``main`` on uvloop; Ctrl-C ends it quietly (the services stop cleanly on their
    own). uvloop's transports and scheduling in C take a good share off the CPU every
    message and request costs."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    except KeyboardInterrupt:
        return None


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


@app.command("place-order")
def place_order(
    user: Annotated[int, typer.Option("--user", help="The customer's userID.")],
    product: Annotated[int, typer.Option("--product", help="The productID.")],
    quantity: Annotated[int, typer.Option("--quantity", help="How many.")] = 1,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the saga has finished.")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header.")] = None,
    api_url: ApiUrl = DEFAULT_API,
) -> None:
    """Place an order through the HTTP API."""

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
            client = OrderClient(http)
            order = await client.place(user, product, quantity, idempotency_key)
            return await client.wait(str(order["orderID"])) if wait else order

    order = _call_api(run, api_url)
    console.print(orders_table([order], title="Order"))


@app.command()
def orders(
    user: Annotated[int | None, typer.Option("--user", help="Only this userID.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    offset: Annotated[int, typer.Option(help="How many to skip.")] = 0,
    api_url: ApiUrl = DEFAULT_API,
) -> None:
    """List orders, newest first."""

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
            return await OrderClient(http).list(
                userID=user, status=status, limit=limit, offset=offset
            )

    page = _call_api(run, api_url)
    items = page["items"]
    console.print(orders_table(items, title=f"Orders ({len(items)} of {page['total']})"))


def _call_api(run: Callable[[], Coroutine[Any, Any, T]], api_url: str) -> T:
    try:
        return asyncio.run(run())
    except ApiError as error:
        console.print(f"[red]The API refused: {error}[/]")
        raise typer.Exit(1) from None
    except httpx.TransportError as error:
        console.print(
            f"[red]Cannot reach the order service at {api_url}: {error!r}.[/]"
            " Is `ordersaga up --embedded` running?"
        )
        raise typer.Exit(1) from None


@app.command("verify")
def verify_command(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Check the embedded system's databases under this directory "
            "instead of the configured ones.",
        ),
    ] = None,
) -> None:
    """Check the design's invariants against the databases; exit 1 if one fails."""
    from ordersaga.services.base import SERVICE_NAMES
    from ordersaga.verify import verify

    if data_dir is not None and not (data_dir / "order.sqlite3").exists():
        console.print(f"[red]No embedded system's data under {data_dir.resolve()}.[/]")
        raise typer.Exit(2)
    settings = Settings()

    async def run() -> bool:
        if data_dir is not None:
            engines = embedded_engines(data_dir)
        else:
            engines = {name: make_engine(settings.database_url(name)) for name in SERVICE_NAMES}
        try:
            checks = await verify(engines)
        finally:
            for engine in engines.values():
                await engine.dispose()
        console.print(checks_table(checks))
        return all(c.ok for c in checks)

    raise typer.Exit(0 if asyncio.run(run()) else 1)


app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(sagas_app, name="sagas")
app.add_typer(outbox_app, name="outbox")
app.command("seed")(seed_command)
app.command("chaos")(chaos_command)
app.command("prune")(prune_command)
app.command("bench")(bench_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
