"""``ordersaga bench --soak``: the real stack at a steady rate for a long time, with
short retention windows; figures per window and whether anything grows."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ordersaga.cli.bench_view import RunProgress, details, summary_table
from ordersaga.cli.soak_view import sample_line, verdict_table, windows_table
from ordersaga.config import Settings
from ordersaga.tools.bench.load import LoadSpec
from ordersaga.tools.bench.results import write_json
from ordersaga.tools.bench.rows import service_tables
from ordersaga.tools.bench.run import Tick
from ordersaga.tools.bench.soak import SoakSample
from ordersaga.tools.bench.soak_plot import plot_soak
from ordersaga.tools.bench.soak_run import SoakOptions, SoakResult, run_soak
from ordersaga.tools.bench.stack import RealStack

if TYPE_CHECKING:
    from ordersaga.cli.bench import BenchConfig


async def soak(
    config: "BenchConfig", options: SoakOptions, settings: Settings, console: Console
) -> SoakResult:
    """Prepare and start the real stack with ``options``' retention, soak it, stop it."""
    logs = config.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = RealStack(settings, config.replicas, logs, config.keep, options.environment())

    @contextmanager
    def progress(label: str, spec: LoadSpec) -> Iterator[Tick]:
        with RunProgress(console, label, spec.warmup + spec.duration) as bar:
            yield bar.tick

    try:
        console.print(f"{stack.system}: preparing databases and bench data")
        await stack.prepare()
        await stack.start(config.ready_timeout)
        groups = [*stack.process_groups(), "bench"]
        origin: list[float] = []

        def on_sample(index: int, sample: SoakSample) -> None:
            origin.append(sample.at)
            console.print(sample_line(index, sample, origin[0], groups))

        console.print(
            f"{stack.system}: ready at {stack.api}; retention {options.retention:g}s, "
            f"pruned every {options.retention_interval:g}s; a line every {options.window:g}s"
        )
        return await run_soak(
            stack,
            config.spec,
            options,
            service_tables(settings),
            progress,
            drain_timeout=config.drain_timeout,
            on_sample=on_sample,
        )
    finally:
        await stack.close()


def _document(config: "BenchConfig", result: SoakResult, started: str) -> dict[str, Any]:
    plan = result.plan
    return {
        "started_at": started,
        "options": {
            "rate": plan.rate,
            "rate_from_probe": result.probe is not None,
            "warmup_s": config.spec.warmup,
            "duration_s": config.spec.duration,
            "window_s": plan.window,
            "retention_s": plan.retention,
            "retention_interval_s": plan.retention_interval,
            "replicas": config.replicas,
        },
        "settled_after_s": plan.settle,
        "judged_processes": sorted(plan.judged_groups),
        "sound": result.sound,
        "bounded": result.bounded,
        "load_average_at_end": os.getloadavg(),
        "verdicts": [asdict(j) for j in result.judgements],
        "windows": [asdict(w) for w in result.windows],
        "run": result.run,
        "probe": result.probe,
    }


def report_soak(config: "BenchConfig", result: SoakResult, started: str, console: Console) -> bool:
    """Print the tables, write soak.json and soak.png; True if every saga finished, the
    invariants hold and no judged process's memory or pruned table grew."""
    runs = [r for r in (result.probe, result.run) if r is not None]
    console.print(summary_table(runs, None))
    console.print(details(runs))
    groups = sorted(result.plan.judged_groups)
    console.print(windows_table(result.windows, groups))
    console.print(verdict_table(result.judgements))
    json_path, png_path = config.out / "soak.json", config.out / "soak.png"
    write_json(json_path, _document(config, result, started))
    title = (
        f"soak: {result.plan.rate:g} sagas/s for {config.spec.duration:g}s, "
        f"retention {result.plan.retention:g}s every {result.plan.retention_interval:g}s"
    )
    plot_soak(result.windows, result.plan.judged_groups, title, png_path)
    console.print(f"results: {json_path}\nplot:    {png_path}\nlogs:    {config.out / 'logs'}")
    ok = result.sound and result.bounded
    if not ok:
        console.print("[bold red]the soak failed: see the invariants and the verdicts[/]")
    return ok
