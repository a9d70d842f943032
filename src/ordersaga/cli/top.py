"""``ordersaga top``: a live view of a running system, read from its metrics endpoints."""

import asyncio
from typing import Annotated

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ordersaga.cli.errors import UNREACHABLE, USAGE, fail
from ordersaga.cli.json_output import JsonFlag, echo_json
from ordersaga.cli.running import run_on_uvloop
from ordersaga.config import Settings
from ordersaga.tools.top import Frame, Watcher, replica_urls

console = Console()


def top_command(
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="A metrics endpoint to read (repeat it for several); default: those of "
            "`ordersaga up --replicas N` on ORDERSAGA_METRICS_HOST:ORDERSAGA_METRICS_PORT.",
        ),
    ] = None,
    replicas: Annotated[
        int, typer.Option(min=1, max=9, help="Replicas per service of the running system.")
    ] = 1,
    embedded: Annotated[
        bool, typer.Option(help="Read the embedded system's one endpoint (the base port).")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between two refreshes.")
    ] = 1.0,
    once: Annotated[
        bool, typer.Option(help="Print one frame (over one interval) and exit.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Watch a running system: sagas per second by outcome, saga duration p50/p99, lag per
    consumer group, outbox backlog, parked sagas, dead letters, CPU and memory per replica.
    Refreshes every second until Ctrl-C."""
    settings = Settings()
    if url:
        urls = list(url)
    else:
        if not settings.metrics_port:
            fail("ORDERSAGA_METRICS_PORT is 0: no metrics port to read; give --url", USAGE)
        host = settings.metrics_host
        base = settings.metrics_port
        urls = [f"http://{host}:{base}/metrics"] if embedded else replica_urls(host, base, replicas)
    run_on_uvloop(_watch(urls, interval, once, as_json))


async def _watch(urls: list[str], interval: float, once: bool, as_json: bool) -> None:
    async with httpx.AsyncClient(timeout=max(1.0, interval)) as http:
        watcher = Watcher(http, urls)
        await watcher.next()  # the first round: counters to difference from
        await asyncio.sleep(interval)
        if once:
            shown = await watcher.next()
            if all(r.error for r in shown.replicas):
                fail(_unreachable(shown), UNREACHABLE)
            if as_json:
                echo_json(shown.as_json())
            else:
                console.print(render(shown))
            return
        with Live(console=console, auto_refresh=False) as live:
            while True:
                shown = await watcher.next()
                if as_json:
                    echo_json(shown.as_json())
                else:
                    live.update(render(shown), refresh=True)
                await asyncio.sleep(interval)


def _unreachable(shown: Frame) -> str:
    lines = "\n".join(f"  {r.url}: {r.error}" for r in shown.replicas)
    return (
        f"no metrics endpoint answers:\n{lines}\nIs the system running (`ordersaga up`)? "
        "Give its endpoints with --url, --replicas or --embedded."
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _pairs(values: dict[str, float], unit: str = "") -> str:
    shown = [f"{k} {v:g}{unit}" for k, v in sorted(values.items())]
    return ", ".join(shown) or "-"


def render(shown: Frame) -> Group:
    """One frame as rich renderables."""
    rates = shown.sagas_finished_per_second
    sagas = Table.grid(padding=(0, 2))
    sagas.add_column(style="bold")
    sagas.add_column()
    started = shown.sagas_started_per_second
    completed, cancelled = rates.get("completed", 0.0), rates.get("cancelled", 0.0)
    sagas.add_row(
        "sagas/s", f"started {started:.1f}, completed {completed:.1f}, cancelled {cancelled:.1f}"
    )
    sagas.add_row("finished", _pairs(shown.sagas_finished_total))
    p50, p99 = _seconds(shown.saga_p50_seconds), _seconds(shown.saga_p99_seconds)
    sagas.add_row("saga duration", f"p50 {p50}, p99 {p99}")
    sagas.add_row("lag", _pairs(shown.lag))
    sagas.add_row("outbox waiting", _pairs(shown.outbox_waiting))
    oldest = {k: round(v, 1) for k, v in shown.outbox_oldest_seconds.items()}
    sagas.add_row("outbox oldest", _pairs(oldest, " s"))
    sagas.add_row(
        "parked / unfinished",
        Text(f"{shown.parked:g} / {shown.unfinished:g}", style="red" if shown.parked else ""),
    )
    sagas.add_row(
        "dead letters",
        Text(f"{shown.dead_letters_total:g}", style="red" if shown.dead_letters_total else ""),
    )
    replicas = Table("replica", "CPU", "memory", "endpoint", box=None, padding=(0, 2))
    for r in shown.replicas:
        if r.error:
            replicas.add_row(r.name, "-", "-", Text(f"{r.url}: {r.error}", style="red"))
            continue
        cpu = "-" if r.cpu_cores is None else f"{r.cpu_cores * 100:.0f}%"
        memory = "-" if r.memory_bytes is None else f"{r.memory_bytes / 2**20:.0f} MiB"
        replicas.add_row(r.name, cpu, memory, r.url)
    return Group(sagas, Text(""), replicas)
