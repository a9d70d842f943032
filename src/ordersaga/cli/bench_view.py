"""What a person sees: a progress bar while a run goes, tables of the figures after."""

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ordersaga.tools.bench.results import RunResult
from ordersaga.tools.bench.targets import Target

WARM_UP_INCLUDED = "(warm-up included)"
CEILING_NOTE = "of ceiling: share of the null-chain ceiling measured in this run."
WINDOW_NOTE = (
    "in the window: sagas finished in the measured window, warm-up excluded; "
    "sagas/s is that count over the window's length."
)


class RunProgress:
    """A bar over the warm-up and the window, with orders placed, finished and the rate."""

    def __init__(self, console: Console, label: str, seconds: float) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[figures]}"),
            TimeRemainingColumn(),
            console=console,
            # drawn on each tick, not ten times a second from a thread: the bench's own CPU
            # is part of what it reports
            auto_refresh=False,
        )
        self._task = self._progress.add_task(label, total=seconds, figures="")
        self._seconds = seconds
        self._last: tuple[float, int] = (0.0, 0)

    def tick(self, elapsed: float, placed: int, finished: int) -> None:
        """Called every half second or so by the run."""
        then, finished_then = self._last
        rate = (finished - finished_then) / (elapsed - then) if elapsed > then else 0.0
        self._last = (elapsed, finished)
        figures = f"placed {placed:>7}  finished {finished:>7}  {rate:7.0f}/s"
        if not placed and not finished:
            figures = "(figures when the run ends)"
        self._progress.update(self._task, completed=min(elapsed, self._seconds), figures=figures)
        self._progress.refresh()

    def done(self, result: RunResult) -> None:
        """The last frame: the run's own counts, as the table gives them."""
        figures = (
            f"placed {result.placed}, finished {result.finished} {WARM_UP_INCLUDED}; "
            f"{result.finished_in_window} in the window"
        )
        self._progress.update(self._task, completed=self._seconds, figures=figures)
        self._progress.refresh()

    def __enter__(self) -> "RunProgress":
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.update(self._task, completed=self._seconds)
        self._progress.stop()


def _share(result: RunResult, ceiling: float) -> str:
    if result.system == "null-chain" or ceiling <= 0:
        return "ceiling"
    return f"{100 * result.throughput / ceiling:.0f}%"


def _invariants(result: RunResult) -> str:
    ok = result.invariants_ok
    return "n/a" if ok is None else ("[green]all hold[/]" if ok else "[bold red]FAILED[/]")


def summary_table(results: Sequence[RunResult], ceiling: float | None) -> Table:
    """One row per run: throughput, share of the ceiling (when one was measured), latency,
    counts with and without the warm-up, outcomes, invariants; what they mean under it."""
    notes = [WINDOW_NOTE] + ([CEILING_NOTE] if ceiling is not None else [])
    table = Table(
        title="Benchmark", title_justify="left", caption=" ".join(notes), caption_justify="left"
    )
    table.add_column("run")
    table.add_column("load")
    table.add_column("sagas/s", justify="right")
    if ceiling is not None:
        table.add_column("of ceiling", justify="right")
    table.add_column("latency ms\np50 / p90 / p99 / max", justify="right")
    table.add_column("in the\nwindow", justify="right")
    table.add_column(f"finished / placed\n{WARM_UP_INCLUDED}", justify="right")
    table.add_column(f"completed / cancelled\n{WARM_UP_INCLUDED}", justify="right")
    table.add_column("invariants")
    for r in results:
        lat = r.latency_ms
        load = f"{r.load['rate']:g}/s" if r.load["mode"] == "rate" else "max"
        latency = f"{lat.p50:.1f} / {lat.p90:.1f} / {lat.p99:.1f} / {lat.max:.1f}" if lat else "-"
        drained = "" if r.drained else " [red]not all[/]"
        share = [] if ceiling is None else [_share(r, ceiling)]
        table.add_row(
            f"{r.name}\n[dim]{r.system}[/]",
            load,
            f"{r.throughput:g}",
            *share,
            latency,
            str(r.finished_in_window),
            f"{r.finished} / {r.placed}{drained}",
            f"{r.outcomes.completed} / {r.outcomes.cancelled}",
            _invariants(r),
        )
    return table


def cpu_table(results: Sequence[RunResult]) -> Table:
    """CPU milliseconds per saga (and cores used) of every process, per run."""
    table = Table(title="CPU per saga in the window: ms (cores)", title_justify="left")
    table.add_column("process")
    for r in results:
        table.add_column(r.name, justify="right")
    groups = list(dict.fromkeys(g for r in results for g in r.cpu))
    for group in groups:
        cells = []
        for r in results:
            figures = r.cpu.get(group)
            if figures is None:
                cells.append("")
            else:
                cells.append(f"{figures['ms_per_saga'] or 0:.2f} ({figures['cores'] or 0:.2f})")
        table.add_row(group, *cells)
    table.add_row(
        "[bold]machine busy[/]",
        *(f"{r.machine['busy_cores']:.2f} of {r.machine['cpus']:g} cores" for r in results),
    )
    return table


def details(results: Sequence[RunResult]) -> Group:
    """Cancellation reasons, the POST latency and the load generator's own cost."""
    lines: list[str] = []
    for r in results:
        for reason, count in r.outcomes.top_reasons:
            lines.append(f"{r.name}: cancelled {count} times: {reason}")
        if r.post_latency_ms is not None:
            p = r.post_latency_ms
            lines.append(
                f"{r.name}: POST answered in p50 {p.p50:.1f} / p99 {p.p99:.1f} ms "
                "(from when it was due)"
            )
        cost = r.generator.get("cpu_us_per_request")
        if cost is not None:
            lines.append(
                f"{r.name}: load generator {cost:.0f} µs CPU per request, "
                f"{r.generator['errors']} errors, {r.generator['refused'] or 'none'} refused"
            )
    return Group(*lines)


def targets_table(targets: Sequence[Target]) -> Table:
    """Each performance target: its goal, what this invocation measured, met or not."""
    table = Table(title="Against the targets", title_justify="left")
    table.add_column("target")
    table.add_column("goal")
    table.add_column("measured")
    table.add_column("met")
    verdicts = {True: "[green]yes[/]", False: "[bold red]no[/]", None: "[dim]-[/]"}
    for target in targets:
        table.add_row(target.name, target.goal, target.measured, verdicts[target.met])
    return table
