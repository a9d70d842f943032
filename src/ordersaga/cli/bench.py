"""``ordersaga bench``: sagas per second, latency and CPU per saga, on the real stack or
the embedded system, optionally against the null-chain ceiling."""

import logging
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import uvloop
from rich.console import Console

from ordersaga.cli.bench_view import RunProgress, cpu_table, details, summary_table, targets_table
from ordersaga.cli.errors import USAGE, fail
from ordersaga.cli.soak import report_soak, soak
from ordersaga.config import Settings
from ordersaga.runtime.processes import NotReady
from ordersaga.tools.bench.load import LoadSpec
from ordersaga.tools.bench.plot import plot_runs
from ordersaga.tools.bench.results import RunResult, write_json
from ordersaga.tools.bench.run import run_null_chain, run_system
from ordersaga.tools.bench.soak_run import SoakOptions
from ordersaga.tools.bench.stack import BenchError, EmbeddedStack, NullChain, RealStack
from ordersaga.tools.bench.targets import against_targets

# The tables need more than the 80 columns rich assumes when output is not a terminal.
console = Console(width=None if sys.stdout.isatty() else 132)


class Baseline(StrEnum):
    null_chain = "null-chain"


@dataclass(frozen=True)
class BenchConfig:
    spec: LoadSpec
    embedded: bool
    replicas: int
    system: bool  # measure the system (not only the baseline)
    baseline: bool
    then_half_rate: bool
    then_rates: tuple[float, ...]
    out: Path
    keep: bool
    drain_timeout: float
    ready_timeout: float
    soak: SoakOptions | None = None


def _progress(screen: Console, label: str, spec: LoadSpec) -> RunProgress:
    return RunProgress(screen, label, spec.warmup + spec.duration)


async def _measure_baseline(config: BenchConfig, settings: Settings, screen: Console) -> RunResult:
    # A ceiling is measured flat out: max_in_flight sagas kept going, whatever the
    # system's own load is.
    spec = replace(config.spec, rate=None)
    chain = NullChain(settings, config.out / "logs", spec.max_in_flight)
    screen.print("null chain: 4 forwarding processes on Kafka")
    with _progress(screen, "null-chain", spec) as progress:
        result = await run_null_chain(chain, spec, progress.tick, config.ready_timeout)
        progress.done(result)
    return result


async def _measure_system(
    config: BenchConfig, settings: Settings, screen: Console
) -> list[RunResult]:
    logs = config.out / "logs"
    stack: RealStack | EmbeddedStack
    if config.embedded:
        stack = EmbeddedStack(settings, logs, config.keep)
    else:
        stack = RealStack(settings, config.replicas, logs, config.keep)
    results: list[RunResult] = []
    try:
        screen.print(f"{stack.system}: preparing databases and bench data")
        await stack.prepare()
        await stack.start(config.ready_timeout)
        screen.print(f"{stack.system}: ready at {stack.api}")
        spec = config.spec
        with _progress(screen, spec.mode, spec) as progress:
            results.append(
                await run_system(stack, spec, spec.mode, progress.tick, config.drain_timeout)
            )
            progress.done(results[-1])
        if config.then_half_rate:
            half = replace(spec, rate=max(1.0, results[0].throughput / 2))
            with _progress(screen, "half-rate", half) as progress:
                results.append(
                    await run_system(stack, half, "half-rate", progress.tick, config.drain_timeout)
                )
                progress.done(results[-1])
        for rate in config.then_rates:
            light = replace(spec, rate=rate)
            name = f"rate-{rate:g}"
            with _progress(screen, name, light) as progress:
                results.append(
                    await run_system(stack, light, name, progress.tick, config.drain_timeout)
                )
                progress.done(results[-1])
    finally:
        await stack.close()
    return results


async def run_bench(config: BenchConfig, settings: Settings, screen: Console) -> list[RunResult]:
    """The baseline first (when asked), then the system's runs; every process stopped.

    Progress goes to ``screen``."""
    (config.out / "logs").mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    if config.baseline:
        results.append(await _measure_baseline(config, settings, screen))
    if config.system:
        results += await _measure_system(config, settings, screen)
    return results


def _document(config: BenchConfig, results: list[RunResult], started: str) -> dict[str, Any]:
    ceiling = next((r.throughput for r in results if r.system == "null-chain"), None)
    return {
        "started_at": started,
        "options": {
            "embedded": config.embedded,
            "replicas": config.replicas,
            "load": config.spec.describe(),
            "drain_timeout_s": config.drain_timeout,
        },
        "ceiling_sagas_per_s": ceiling,
        "share_of_ceiling": {
            r.name: round(r.throughput / ceiling, 4)
            for r in results
            if ceiling and r.system != "null-chain"
        },
        "targets": against_targets(results),
        "runs": results,
    }


def report(
    config: BenchConfig, results: list[RunResult], started: str, *, as_json: bool = False
) -> bool:
    """Write the JSON and the PNG, and print the tables, or with ``as_json`` the JSON
    document alone; True if every run is sound."""
    ceiling = next((r.throughput for r in results if r.system == "null-chain"), None)
    document = _document(config, results, started)
    json_path, png_path = config.out / "bench.json", config.out / "bench.png"
    write_json(json_path, document)
    plot_runs(results, png_path)
    if as_json:
        typer.echo(json_path.read_text())
    else:
        console.print(summary_table(results, ceiling))
        console.print(cpu_table(results))
        console.print(details(results))
        console.print(targets_table(against_targets(results)))
        console.print(f"results: {json_path}\nplot:    {png_path}\nlogs:    {config.out / 'logs'}")
    return all(r.drained and r.invariants_ok is not False for r in results)


def _config(
    *,
    rate: float | None,
    max_rate: bool,
    baseline: Baseline | None,
    with_baseline: bool,
    then_half_rate: bool,
    then_rates: list[float],
    embedded: bool,
    soak: SoakOptions | None,
    **rest: Any,
) -> BenchConfig:
    if rate is not None and max_rate:
        raise typer.BadParameter("give --rate or --max, not both")
    if soak is not None and (max_rate or then_half_rate or baseline or with_baseline or embedded):
        raise typer.BadParameter(
            "--soak runs on the real stack at --rate (or at 60 % of a --probe run's rate) only"
        )
    if then_half_rate and rate is not None:
        raise typer.BadParameter("--then-half-rate follows a --max run")
    if then_rates and rate is not None:
        raise typer.BadParameter("--then-rate follows a --max run")
    if any(r <= 0 for r in then_rates):
        raise typer.BadParameter("--then-rate takes orders per second above 0")
    wants_baseline = baseline is not None or with_baseline
    if wants_baseline and embedded:
        raise typer.BadParameter("the null chain runs on Kafka: not with --embedded")
    spec = LoadSpec(
        rate=rate,
        concurrency=rest.pop("concurrency"),
        max_in_flight=rest.pop("max_in_flight"),
        warmup=rest.pop("warmup"),
        duration=rest.pop("duration"),
        seed=rest.pop("seed"),
    )
    out = rest.pop("out") or Path(".cache/bench") / datetime.now().strftime("%Y%m%d-%H%M%S")
    return BenchConfig(
        spec=spec,
        embedded=embedded,
        system=baseline is None or with_baseline,
        baseline=wants_baseline,
        then_half_rate=then_half_rate,
        then_rates=tuple(then_rates),
        out=out,
        soak=soak,
        **rest,
    )


def _soak(config: BenchConfig, options: SoakOptions, started: str) -> None:
    try:
        result = uvloop.run(soak(config, options, Settings(), console))
    except (BenchError, NotReady) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; every process it started is stopped[/]")
        raise typer.Exit(130) from None
    raise typer.Exit(0 if report_soak(config, result, started, console) else 1)


def bench_command(
    embedded: Annotated[
        bool, typer.Option(help="Run `ordersaga up --embedded` (SQLite, in-process broker).")
    ] = False,
    rate: Annotated[
        float | None, typer.Option(help="Open loop: orders per second, on a fixed schedule.")
    ] = None,
    max_rate: Annotated[
        bool, typer.Option("--max", help="Closed loop, as fast as taken (the default).")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="--max: HTTP workers.", min=1)] = 32,
    max_in_flight: Annotated[
        int, typer.Option(help="--max and the null chain: sagas started, not finished.", min=1)
    ] = 2000,
    warmup: Annotated[
        float,
        typer.Option(
            help="Seconds of load before measuring, and at least until the first saga finished.",
            min=0,
        ),
    ] = 5,
    duration: Annotated[float, typer.Option(help="Seconds measured.", min=1)] = 20,
    replicas: Annotated[int, typer.Option(help="Processes of each service (real).", min=1)] = 1,
    baseline: Annotated[
        Baseline | None, typer.Option(help="Measure only this baseline, not the system.")
    ] = None,
    with_baseline: Annotated[
        bool, typer.Option(help="The null chain too; the system as a share of it.")
    ] = False,
    then_half_rate: Annotated[
        bool, typer.Option(help="After the --max run, a --rate run at half its throughput.")
    ] = False,
    then_rate: Annotated[
        list[float] | None,
        typer.Option(
            help="After the --max (and half-rate) runs, an open-loop run at this rate; "
            "repeatable (make bench: 25, the light-load figure)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where bench.json, bench.png and the logs go.")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the scratch databases / data dir.")] = False,
    drain_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every saga after the load.")
    ] = 60,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for start-up.")] = 90,
    seed: Annotated[int, typer.Option(help="Seeds the users and products ordered.")] = 0,
    soak_run: Annotated[
        bool,
        typer.Option(
            "--soak",
            help="A long run at --rate (or 60 % of a --probe run) with short retention "
            "windows: figures per --window, and whether memory, latency or rows grow.",
        ),
    ] = False,
    window: Annotated[float, typer.Option(help="--soak: seconds per window.", min=1)] = 60,
    retention: Annotated[
        float, typer.Option(help="--soak: the services' inbox and saga retention, s.", min=0.1)
    ] = 60,
    retention_interval: Annotated[
        float, typer.Option(help="--soak: seconds between pruning rounds.", min=0.1)
    ] = 10,
    probe: Annotated[
        float, typer.Option(help="--soak without --rate: seconds of the --max run.", min=1)
    ] = 20,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print bench.json's document instead of the tables (progress goes to "
            "standard error).",
        ),
    ] = False,
) -> None:
    """Measure sagas per second, latency (created → terminal) and CPU per saga.

    Real stack (the default): scratch databases (orders_test_bench, stock_test_bench...)
    on the configured PostgreSQL and MariaDB, migrated, seeded and given bench products
    and users; the services started as child processes. IT DELETES AND RECREATES THE
    SAGA TOPICS on the configured Kafka: do not point it at a Kafka in use.

    --embedded: `ordersaga up --embedded` as a child process on a temporary directory.

    --soak: the real stack for --duration seconds at --rate (or at 60 % of what a --max
    run of --probe seconds carried), the services pruning with --retention windows every
    --retention-interval seconds; a line per --window, then each window's figures and a
    verdict on every trend; writes soak.json and soak.png. Exit 1 also if a service's
    memory or a pruned table grew.

    Exit 1 if a run did not finish every saga or an invariant failed."""
    logging.basicConfig(level=logging.WARNING)
    config = _config(
        rate=rate,
        max_rate=max_rate,
        baseline=baseline,
        with_baseline=with_baseline,
        then_half_rate=then_half_rate,
        then_rates=then_rate or [],
        embedded=embedded,
        concurrency=concurrency,
        max_in_flight=max_in_flight,
        warmup=warmup,
        duration=duration,
        seed=seed,
        out=out,
        replicas=replicas,
        keep=keep,
        drain_timeout=drain_timeout,
        ready_timeout=ready_timeout,
        soak=SoakOptions(window, retention, retention_interval, probe) if soak_run else None,
    )
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    if config.soak is not None:
        _soak(config, config.soak, started)
    try:
        # uvloop halves the load generator's CPU per request
        screen = Console(stderr=True) if as_json else console
        results = uvloop.run(run_bench(config, Settings(), screen))
    except (BenchError, NotReady) as error:
        fail(str(error), USAGE)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; every process it started is stopped[/]")
        raise typer.Exit(130) from None
    raise typer.Exit(0 if report(config, results, started, as_json=as_json) else 1)
