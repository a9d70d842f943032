"""soak.png: per window, the rate and p99 latency, the resident memory of every process
and the rows of every pruned or transient table. Drawn on a bare Figure (Agg)."""

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ordersaga.tools.bench.rows import Kind, kind_of, short_name
from ordersaga.tools.bench.soak import SoakWindow

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _minutes(windows: Sequence[SoakWindow]) -> list[float]:
    return [w.end_s / 60 for w in windows]


def _rate_and_p99(ax: "Axes", windows: Sequence[SoakWindow], title: str) -> None:
    xs = _minutes(windows)
    ax.plot(xs, [w.sagas_per_s for w in windows], color="tab:blue", marker=".")
    ax.set_ylabel("sagas / s", color="tab:blue")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    p99 = ax.twinx()
    points = [(x, w.p99_ms) for x, w in zip(xs, windows, strict=True) if w.p99_ms is not None]
    if points:
        px, py = zip(*points, strict=True)
        p99.plot(px, py, color="tab:red", marker=".", label="p99")
    p50 = [(x, w.p50_ms) for x, w in zip(xs, windows, strict=True) if w.p50_ms is not None]
    if p50:
        qx, qy = zip(*p50, strict=True)
        p99.plot(qx, qy, color="tab:orange", linestyle="--", label="p50")
    p99.set_ylabel("latency per window (ms)", color="tab:red")
    p99.set_ylim(bottom=0)
    p99.legend(loc="lower right", fontsize=8)


def _memory(ax: "Axes", windows: Sequence[SoakWindow], judged: Collection[str]) -> None:
    xs = _minutes(windows)
    groups = sorted({g for w in windows for g in w.rss_mb})
    servers = ax.twinx()
    for group in groups:
        ys = [w.rss_mb.get(group, 0) for w in windows]
        if group in judged:
            ax.plot(xs, ys, marker=".", label=group)
        else:
            servers.plot(xs, ys, linestyle=":", label=f"{group} (right)")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(bottom=0)
    servers.set_ylabel("servers' resident memory (MB, dotted)")
    servers.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncol=5, loc="lower left")
    servers.legend(fontsize=7, ncol=3, loc="lower right")
    ax.set_title("resident memory per process (the servers are shared, not judged)", fontsize=10)


def _rows(ax: "Axes", windows: Sequence[SoakWindow]) -> None:
    xs = _minutes(windows)
    tables = sorted({t for w in windows for t in w.rows})
    for table in tables:
        if kind_of(table) in (Kind.PRUNED, Kind.TRANSIENT):
            ys = [w.rows.get(table, 0) for w in windows]
            if any(ys):
                ax.plot(xs, ys, marker=".", label=short_name(table))
    ax.set_ylabel("rows")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("minutes since the soak's window started")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    orders = [sum(n for t, n in w.rows.items() if t.endswith(".orders")) for w in windows]
    kept = ax.twinx()
    kept.plot(xs, orders, color="grey", linestyle=":", label="orders (kept)")
    kept.set_ylabel("orders (kept for good)", color="grey")
    kept.set_ylim(bottom=0)
    ax.set_title("rows of the pruned and transient tables; orders dotted", fontsize=10)


def plot_soak(
    windows: Sequence[SoakWindow], judged: Collection[str], title: str, path: Path
) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 11))
    top, middle, bottom = figure.subplots(3, 1, sharex=True)
    _rate_and_p99(top, windows, title)
    _memory(middle, windows, judged)
    _rows(bottom, windows)
    figure.tight_layout()
    figure.savefig(path, dpi=90, format="png")
