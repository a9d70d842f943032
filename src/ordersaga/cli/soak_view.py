"""What a person sees of a soak: a line per window while it runs, then a table of the
windows and one of the verdicts."""

from collections.abc import Mapping, Sequence

from rich.table import Table

from ordersaga.tools.bench.rows import Kind, kind_of, short_name
from ordersaga.tools.bench.soak import MB, Judgement, SoakSample, SoakWindow


def _watched(rows: Mapping[str, int]) -> list[str]:
    """The pruned tables, one by one; the transient and record tables are summed."""
    return sorted(t for t in rows if kind_of(t) == Kind.PRUNED)


def _sum(rows: Mapping[str, int], name: str) -> int:
    return sum(n for t, n in rows.items() if t.endswith(f".{name}"))


def sample_line(index: int, sample: SoakSample, origin: float, groups: Sequence[str]) -> str:
    """The live line printed at a window's edge."""
    memory = "  ".join(f"{g} {sample.rss.get(g, 0) / MB:.0f}" for g in groups)
    rows = sample.rows
    if not rows:
        counted = "rows not counted"
    else:
        counted = "  ".join(f"{short_name(t)} {rows[t]}" for t in _watched(rows))
        counted += f"  outboxes {_sum(rows, 'outbox')}  orders {_sum(rows, 'orders')}"
    return f"[dim]{sample.at - origin:6.0f}s[/] RSS MB: {memory} | rows: {counted}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def windows_table(windows: Sequence[SoakWindow], groups: Sequence[str]) -> Table:
    """A row per window: rate, latency, the memory of ``groups``, rows per table."""
    table = Table(title="Soak, per window", title_justify="left")
    table.add_column("window s")
    for name in ("sagas/s", "p50 ms", "p99 ms", "pending"):
        table.add_column(name, justify="right")
    for group in groups:
        table.add_column(f"{group}\nMB", justify="right")
    watched = _watched(windows[-1].rows) if windows else []
    for name in watched:
        table.add_column(short_name(name).replace(" ", "\n"), justify="right")
    for name in ("outbox", "outbox_failed", "orders"):
        table.add_column(name.replace("_", "\n"), justify="right")
    for w in windows:
        table.add_row(
            f"{w.start_s:.0f}-{w.end_s:.0f}",
            f"{w.sagas_per_s:.1f}",
            _ms(w.p50_ms),
            _ms(w.p99_ms),
            str(w.pending),
            *(f"{w.rss_mb.get(g, 0):.0f}" for g in groups),
            *(str(w.rows.get(t, "-")) for t in watched),
            *(str(_sum(w.rows, n)) for n in ("outbox", "outbox_failed", "orders")),
        )
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def verdict_table(judgements: Sequence[Judgement]) -> Table:
    """A row per figure: its first and last settled value, the fitted rise, t, verdict."""
    table = Table(title="Does anything grow? (over the settled windows)", title_justify="left")
    for name in ("figure", "first", "last", "fitted rise", "material", "t"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    table.add_column("verdict")
    for j in judgements:
        trend = j.trend
        colour = "green" if j.ok else "bold red"
        verdict = f"[{colour}]{j.verdict}[/]" + (f" [dim]{j.note}[/]" if j.note else "")
        table.add_row(
            j.figure,
            _fmt(j.first),
            _fmt(j.last),
            _fmt(trend.rise if trend else None),
            _fmt(trend.material if trend else None),
            "-" if trend is None else f"{trend.t:.1f}",
            verdict,
        )
    return table
