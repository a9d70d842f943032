"""``ordersaga chaos``: the services under faults, then the invariants."""

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ordersaga.cli.errors import USAGE, fail
from ordersaga.cli.tables import checks_table
from ordersaga.config import Settings
from ordersaga.tools.chaos import (
    MIN_COMPLETED_SHARE,
    ChaosConfig,
    ChaosError,
    ChaosReport,
    run_chaos,
)
from ordersaga.tools.chaos_kafka import CLUSTER_BOOTSTRAP, CLUSTER_REPLICATION

console = Console()


def chaos_command(
    duration: Annotated[
        float, typer.Option(help="Seconds of placing orders (more until every fault is in).", min=1)
    ] = 60,
    orders_per_second: Annotated[
        float, typer.Option(help="Orders placed per second.", min=0.1)
    ] = 5,
    replicas: Annotated[int, typer.Option(help="Processes of each service.", min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Seeds the fault schedule and the orders.")] = 0,
    infra_dir: Annotated[
        Path, typer.Option(help="Where infra.sh is, to restart Kafka and the databases.")
    ] = Path("infra"),
    log_dir: Annotated[Path, typer.Option(help="The replicas' logs.")] = Path(".cache/chaos"),
    reuse: Annotated[
        bool, typer.Option(help="Run on databases that already hold orders (verify counts them).")
    ] = False,
    quiet_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every order to end.")
    ] = 120,
    data: Annotated[
        str,
        typer.Option(
            help="chaos: added products and users so most orders complete and some are "
            "refused for stock or money; sample: the demo's data only."
        ),
    ] = "chaos",
    kafka: Annotated[
        str,
        typer.Option(
            help="single: the configured Kafka, restarted once; cluster: the three-node "
            "cluster of `infra.sh up kafka3` (replication 3), whose busiest leader is "
            "killed and one node hung past the session timeouts."
        ),
    ] = "single",
) -> None:
    """Place orders while killing replicas (kill -9) and restarting Kafka, PostgreSQL and
    MariaDB on a seeded schedule; then wait until quiet and check the invariants.

    Runs on the configured infrastructure (ORDERSAGA_*), schema and seed in place.
    Exit 0 only if every invariant holds, every order was taken and no replica died on
    its own."""
    logging.basicConfig(level=logging.WARNING)
    config = ChaosConfig(
        duration=duration,
        orders_per_second=orders_per_second,
        replicas=replicas,
        seed=seed,
        infra_dir=infra_dir,
        log_dir=log_dir,
        reuse=reuse,
        quiet_timeout=quiet_timeout,
        data=data,
        kafka=kafka,
    )
    if data not in ("chaos", "sample"):
        fail(f"--data takes chaos or sample, not {data!r}", USAGE)
    if kafka not in ("single", "cluster"):
        fail(f"--kafka takes single or cluster, not {kafka!r}", USAGE)
    settings = Settings()
    if kafka == "cluster":
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": CLUSTER_BOOTSTRAP,
                "kafka_replication_factor": CLUSTER_REPLICATION,
            }
        )
    try:
        report = asyncio.run(run_chaos(config, settings, say=console.print))
    except ChaosError as error:
        fail(str(error), USAGE)
    print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def print_report(report: ChaosReport) -> None:
    """The faults, the orders, their outcomes, the time to quiet and the invariants."""
    faults = Table(title="Faults injected", title_justify="left")
    for column in ("at (s)", "kind", "target", "took (s)", "detail"):
        faults.add_column(column)
    for f in report.faults:
        faults.add_row(f"{f.at:.1f}", f.kind, f.target, f"{f.took:.1f}", f.detail)
    console.print(faults)
    console.print(f"Orders placed {report.placed}, accepted {report.accepted}")
    outcomes = ", ".join(f"{status} {n}" for status, n in sorted(report.outcomes.items()))
    console.print(f"Outcomes: {outcomes or 'none'}")
    total = sum(report.mix.values())
    mix = ", ".join(
        f"{kind} {n} ({n / total:.0%})" for kind, n in sorted(report.mix.items()) if total
    )
    console.print(f"Outcome mix: {mix or 'none'}", soft_wrap=True)
    if not report.exercised:
        console.print(
            "[bold red]the run did not exercise every path: under "
            f"{MIN_COMPLETED_SHARE:.0%} completed, or no order refused for money[/]"
        )
    quiet = report.time_to_quiet
    console.print(
        "Time to quiet: "
        + (f"{quiet:.1f}s" if quiet is not None else "[bold red]not quiet in time[/]")
    )
    if report.crashes:
        console.print(f"[bold red]{len(report.crashes)} replica(s) exited by themselves[/]")
    console.print(checks_table(report.checks))
    console.print("[green]chaos run passed[/]" if report.ok else "[bold red]chaos run FAILED[/]")
