"""The bench's runs against the project's performance targets.

Every target is judged on runs of one ``ordersaga bench`` invocation, on one machine:

- at ``--max``, at least half of the null-chain ceiling measured in the same invocation;
- at ``--max``, a flat per-second series: no whole second of the window in which fewer
  sagas finished than half the window's mean;
- at half the maximum rate (``--then-half-rate``), p99 latency of at most 100 ms;
- CPU per saga (every process of the system, the load generator left out) at half rate
  at most 1.5 times that at ``--max``, and at a light load (``--then-rate 25``) at most
  three times;
- the embedded system at ``--max``: at least 1,500 sagas a second.

A target whose runs are not part of the invocation is reported as not measured.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from ordersaga.tools.bench.results import RunResult

SHARE_OF_CEILING = 0.5
FLAT_SHARE_OF_MEAN = 0.5
HALF_RATE_P99_MS = 100.0
HALF_RATE_CPU_RATIO = 1.5
LIGHT_RATE = 25.0
LIGHT_CPU_RATIO = 3.0
EMBEDDED_SAGAS_PER_S = 1500.0

# The load generator's own CPU is the bench's, not the system's.
NOT_THE_SYSTEM = frozenset({"bench"})


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str  # what the runs gave, in words; "not measured" without them
    met: bool | None  # None: not measured in this invocation


def cpu_ms_per_saga(run: RunResult) -> float | None:
    """CPU milliseconds per finished saga of every process of the system."""
    if not run.finished_in_window:
        return None
    seconds = sum(
        float(figures["cpu_s"]) for group, figures in run.cpu.items() if group not in NOT_THE_SYSTEM
    )
    return seconds * 1000 / run.finished_in_window


def window_seconds(run: RunResult) -> list[int]:
    """Sagas finished in each whole second of the series that lies inside the window.

    The system's series starts at the load's start (its sagas are all created after it).
    """
    origin, start, end = (run.window[k] for k in ("load_start", "start", "end"))
    return [
        s.finished
        for s in run.series
        if origin + s.second >= start and origin + s.second + 1 <= end
    ]


def _named(runs: Sequence[RunResult], name: str) -> RunResult | None:
    return next((r for r in runs if r.name == name), None)


def _at_rate(runs: Sequence[RunResult], rate: float) -> RunResult | None:
    return next(
        (r for r in runs if r.load.get("mode") == "rate" and r.load.get("rate") == rate), None
    )


def _unmeasured(name: str, goal: str, missing: str) -> Target:
    return Target(name, goal, f"not measured ({missing})", None)


def _share(runs: Sequence[RunResult], top: RunResult | None) -> Target:
    name, goal = "share of the ceiling at --max", f">= {SHARE_OF_CEILING:.0%}"
    ceiling = _named(runs, "null-chain")
    if top is None or ceiling is None or not ceiling.throughput:
        return _unmeasured(name, goal, "needs --max with --with-baseline")
    share = top.throughput / ceiling.throughput
    return Target(
        name,
        goal,
        f"{share:.0%} ({top.throughput:g} of {ceiling.throughput:g} sagas/s)",
        share >= SHARE_OF_CEILING,
    )


def _flat(top: RunResult | None) -> Target:
    name, goal = "flat series at --max", f"no second below {FLAT_SHARE_OF_MEAN:.0%} of the mean"
    seconds = window_seconds(top) if top is not None else []
    if not seconds:
        return _unmeasured(name, goal, "needs a --max run")
    mean = sum(seconds) / len(seconds)
    lowest = min(seconds)
    return Target(
        name,
        goal,
        f"lowest second {lowest} against a mean of {mean:.0f} ({lowest / mean:.0%})"
        if mean
        else "no saga finished",
        bool(mean) and lowest >= FLAT_SHARE_OF_MEAN * mean,
    )


def _p99(half: RunResult | None) -> Target:
    name, goal = "p99 at half the maximum rate", f"<= {HALF_RATE_P99_MS:g} ms"
    if half is None or half.latency_ms is None:
        return _unmeasured(name, goal, "needs --then-half-rate")
    p99 = half.latency_ms.p99
    return Target(name, goal, f"{p99:.1f} ms at {half.load['rate']:g}/s", p99 <= HALF_RATE_P99_MS)


def _cpu_ratio(
    name: str, goal: float, top: RunResult | None, other: RunResult | None, missing: str
) -> Target:
    at_max = cpu_ms_per_saga(top) if top is not None else None
    at_other = cpu_ms_per_saga(other) if other is not None else None
    if at_max is None or at_other is None or not at_max:
        return _unmeasured(name, f"<= {goal:g}x", missing)
    ratio = at_other / at_max
    return Target(
        name,
        f"<= {goal:g}x",
        f"{ratio:.2f}x ({at_other:.2f} against {at_max:.2f} ms per saga)",
        ratio <= goal,
    )


def against_targets(runs: Sequence[RunResult]) -> list[Target]:
    """Each target, judged on ``runs`` (one invocation's results)."""
    systems = [r for r in runs if r.system != "null-chain"]
    top = next((r for r in systems if r.load.get("mode") == "max"), None)
    if top is not None and top.system == "embedded":
        return [_embedded(top)]
    half = _named(systems, "half-rate")
    light = _at_rate(systems, LIGHT_RATE)
    return [
        _share(runs, top),
        _flat(top),
        _p99(half),
        _cpu_ratio(
            "CPU per saga, half rate against --max",
            HALF_RATE_CPU_RATIO,
            top,
            half,
            "needs --then-half-rate",
        ),
        _cpu_ratio(
            f"CPU per saga, {LIGHT_RATE:g}/s against --max",
            LIGHT_CPU_RATIO,
            top,
            light,
            f"needs --then-rate {LIGHT_RATE:g}",
        ),
    ]


def _embedded(top: RunResult) -> Target:
    return Target(
        "embedded at --max",
        f">= {EMBEDDED_SAGAS_PER_S:,.0f} sagas/s",
        f"{top.throughput:g} sagas/s",
        top.throughput >= EMBEDDED_SAGAS_PER_S,
    )
