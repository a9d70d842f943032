"""A PNG of the runs: sagas finished and p99 latency per second, and a latency histogram.

Drawn on a bare :class:`~matplotlib.figure.Figure`, which renders with Agg and never
touches pyplot's global state or a display.
"""

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ordersaga.tools.bench.results import RunResult

if TYPE_CHECKING:  # matplotlib takes most of a second to import: only when plotting
    from matplotlib.axes import Axes


def _title(result: RunResult) -> str:
    load = result.load
    how = f"{load['rate']:g}/s open loop" if load["mode"] == "rate" else "max"
    return f"{result.name}: {result.system}, {how} — {result.throughput:g} sagas/s"


def _over_time(ax: "Axes", result: RunResult) -> None:
    seconds = [s.second for s in result.series]
    finished = [s.finished for s in result.series]
    # a bucket is the second [i, i + 1): bars and points drawn over it, not centred on i
    ax.bar(seconds, finished, width=0.9, align="edge", color="tab:blue", alpha=0.6)
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("sagas finished / s", color="tab:blue")
    start = result.window["start"] - result.window["load_start"]
    end = result.window["end"] - result.window["load_start"]
    ax.axvspan(start, end, color="tab:green", alpha=0.22, label="measurement window")
    for at, label in ((start, "window start"), (end, "window end")):
        ax.axvline(at, color="tab:green", linewidth=1.5)
        ax.annotate(
            f"{label} ({at:.0f} s)",
            xy=(at, 0),
            xycoords=("data", "axes fraction"),
            xytext=(3, 3),
            textcoords="offset points",
            rotation=90,
            va="bottom",
            fontsize=8,
            color="tab:green",
        )
    ax.set_title(_title(result), fontsize=10)
    p99 = ax.twinx()
    points = [(s.second + 0.5, s.p99_ms) for s in result.series if s.p99_ms is not None]
    if points:
        xs, ys = zip(*points, strict=True)
        p99.plot(xs, ys, color="tab:red", marker=".", linewidth=1)
    p99.set_ylabel("p99 latency (ms)", color="tab:red")
    p99.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)


def _histogram(ax: "Axes", result: RunResult) -> None:
    edges = [float(e) for e in result.histogram.get("edges_ms", [])]
    counts = [float(c) for c in result.histogram.get("counts", [])]
    if counts:
        widths = [b - a for a, b in itertools.pairwise(edges)]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color="tab:purple", alpha=0.7)
    latency = result.latency_ms
    if latency is not None:
        for label, value, style in (("p50", latency.p50, "--"), ("p99", latency.p99, ":")):
            ax.axvline(value, color="black", linestyle=style, label=f"{label} {value:.1f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("saga latency, created → terminal (ms)")
    ax.set_ylabel("sagas")
    ax.set_title("latency of the sagas created in the window", fontsize=10)


def plot_runs(results: Sequence[RunResult], path: Path) -> None:
    """One row per run: the time series on the left, the histogram on the right."""
    from matplotlib.figure import Figure

    rows = max(1, len(results))
    figure = Figure(figsize=(13, 3.8 * rows))
    axes = figure.subplots(rows, 2, squeeze=False)
    for row, result in zip(axes, results, strict=False):
        _over_time(row[0], result)
        _histogram(row[1], result)
    figure.tight_layout()
    figure.savefig(path, dpi=90, format="png")
