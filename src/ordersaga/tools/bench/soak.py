"""A soak's figures: windows of a long run at a steady rate, and whether anything in
them grows — latency, the memory of a process, the rows of a table.

Samples of resident memory and row counts are taken at every window's edge; a window
holds the sagas that *finished* between its two samples (the rate and the p50/p99 of
those sagas' latencies). The trend of each figure is judged (:mod:`.trend`) over the
windows that start once the run has settled: after the first window and after the
retention window plus two pruning rounds, when the pruned tables have reached the level
they keep.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ordersaga.tools.bench.results import SagaTimes, percentile
from ordersaga.tools.bench.rows import Kind, kind_of
from ordersaga.tools.bench.trend import Trend, Verdict, trend

MB = 1024 * 1024
RATE_SHARE = 0.6
"""A soak without --rate runs at this share of the rate a short --max run measured."""
THROUGHPUT_TOLERANCE = 0.10  # of the rate: a fall smaller than this is not judged
P99_TOLERANCE = 0.25  # of the mean per-window p99
RSS_TOLERANCE, RSS_FLOOR_MB = 0.10, 8.0  # of the mean, and at least this much
ROWS_TOLERANCE = 0.10  # of the mean; at least one window's sagas


@dataclass(frozen=True)
class SoakSample:
    """Taken at a window's edge: resident bytes per process group, rows per table."""

    at: float  # epoch seconds
    rss: Mapping[str, int]
    rows: Mapping[str, int]


@dataclass(frozen=True)
class SoakWindow:
    index: int
    start_s: float  # since the first sample
    length_s: float
    finished: int
    sagas_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    pending: int  # sagas placed but not finished at the window's end: the backlog
    rss_mb: dict[str, float]  # at the window's end
    rows: dict[str, int]  # at the window's end

    @property
    def end_s(self) -> float:
        return self.start_s + self.length_s


def soak_windows(sagas: Sequence[SagaTimes], samples: Sequence[SoakSample]) -> list[SoakWindow]:
    """One window between each two consecutive samples; its backlog counts only the
    sagas read (those the soak placed), not a probe's."""
    origin = samples[0].at if samples else 0.0
    latencies: list[list[float]] = [[] for _ in samples[1:]]
    edges = [s.at for s in samples]
    for saga in sagas:
        if saga.finished is None:
            continue
        for i in range(len(latencies)):  # few windows; bisect would not pay for itself
            if edges[i] <= saga.finished < edges[i + 1]:
                latencies[i].append(saga.finished - saga.created)
                break
    windows = []
    for i, found in enumerate(latencies):
        ordered = sorted(v * 1000 for v in found)
        length = edges[i + 1] - edges[i]
        end = samples[i + 1]
        windows.append(
            SoakWindow(
                index=i,
                start_s=round(edges[i] - origin, 3),
                length_s=round(length, 3),
                finished=len(ordered),
                sagas_per_s=round(len(ordered) / length, 2) if length > 0 else 0.0,
                p50_ms=percentile(ordered, 50) if ordered else None,
                p99_ms=percentile(ordered, 99) if ordered else None,
                pending=_pending(sagas, edges[i + 1]),
                rss_mb={g: round(b / MB, 1) for g, b in end.rss.items()},
                rows=dict(end.rows),
            )
        )
    return windows


def _pending(sagas: Sequence[SagaTimes], at: float) -> int:
    return sum(1 for s in sagas if s.created < at and (s.finished is None or s.finished >= at))


@dataclass(frozen=True)
class Judgement:
    """One figure's trend over the settled windows, and whether it is acceptable."""

    figure: str  # "sagas/s", "p99 ms", "rss_mb order-1", "rows orchestrator.saga_history"
    kind: str  # throughput, latency, memory, rows
    verdict: str
    ok: bool
    trend: Trend | None
    first: float | None = None  # the figure in the first and last settled window
    last: float | None = None
    note: str = ""


@dataclass(frozen=True)
class SoakPlan:
    """What the judgement needs to know about the run."""

    rate: float
    window: float
    retention: float
    retention_interval: float
    judged_groups: frozenset[str]  # processes whose memory is judged (not shared servers)

    @property
    def settle(self) -> float:
        return max(self.window, self.retention + 2 * self.retention_interval)


@dataclass
class Series:
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)

    def add(self, x: float, y: float | None) -> None:
        if y is not None:
            self.xs.append(x)
            self.ys.append(y)


def _judge(figure: str, kind: str, series: Series, material: float) -> Judgement:
    found = trend(series.xs, series.ys, material)
    first = series.ys[0] if series.ys else None
    last = series.ys[-1] if series.ys else None
    ok = found.verdict in (Verdict.FLAT, Verdict.TOO_SHORT) or (
        kind == "throughput" and found.verdict == Verdict.GROWS
    )
    return Judgement(figure, kind, found.verdict.value, ok, found, first, last)


def _series(windows: Sequence[SoakWindow], pick: str, key: str = "") -> Series:
    series = Series()
    for w in windows:
        value: float | None
        if pick == "rss":
            value = w.rss_mb.get(key)
        elif pick == "rows":
            found = w.rows.get(key)
            value = None if found is None else float(found)
        else:
            value = getattr(w, pick)
        series.add(w.end_s, value)
    return series


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def judge(windows: Sequence[SoakWindow], plan: SoakPlan) -> list[Judgement]:
    """The verdict on every figure over the windows that start once the run settled.

    Throughput must not fall, p99 latency and the memory of the judged processes must
    not grow, pruned and transient tables must stay bounded. The servers' memory (shared
    with whatever else runs on the machine) and the tables that are meant to grow are
    reported, not judged."""
    settled = [w for w in windows if w.start_s >= plan.settle]
    throughput = _series(settled, "sagas_per_s")
    found = [_judge("sagas/s", "throughput", throughput, THROUGHPUT_TOLERANCE * plan.rate)]
    p99 = _series(settled, "p99_ms")
    found.append(_judge("p99 ms", "latency", p99, P99_TOLERANCE * _mean(p99.ys)))
    for group in sorted({g for w in windows for g in w.rss_mb}):
        rss = _series(settled, "rss", group)
        material = max(RSS_TOLERANCE * _mean(rss.ys), RSS_FLOOR_MB)
        judged = _judge(f"rss_mb {group}", "memory", rss, material)
        if group not in plan.judged_groups:
            judged = replace(judged, ok=True, note="not judged: a server the machine shares")
        found.append(judged)
    for table in sorted({t for w in windows for t in w.rows}):
        found.append(_judge_rows(table, _series(settled, "rows", table), plan))
    return found


def _judge_rows(table: str, series: Series, plan: SoakPlan) -> Judgement:
    kind = kind_of(table)
    material = max(ROWS_TOLERANCE * _mean(series.ys), plan.rate * plan.window)
    judged = _judge(f"rows {table}", "rows", series, material)
    if kind in (Kind.PRUNED, Kind.TRANSIENT):
        return replace(judged, verdict="bounded" if judged.ok else judged.verdict, note=kind)
    if kind == Kind.RECORD:
        return replace(judged, ok=True, note="the business record: a row per order, kept")
    return replace(judged, ok=True, note=kind)
