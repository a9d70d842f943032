"""What a run measured, computed from the sagas' own timestamps; written as JSON.

Definitions (the same for the system and the null-chain baseline):

- a saga's latency is ``updated_at - created_at`` of its order: from the order row's
  insert to its terminal status, both written by the order service (microseconds);
- throughput is the number of sagas that *finished* inside the measurement window
  (after the warm-up, until the load stops) divided by the window's length: what the
  system completes in steady state, whatever it accepted;
- latency percentiles are over the sagas *created* inside the window, each followed to
  its end (after the load stops, the bench waits until every saga has finished);
- the per-second series bucket sagas by the second in which they finished.
"""

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

COMPLETED = "ORDER_COMPLETED"
CANCELLED = "ORDER_CANCELLED"
TOP_REASONS = 5


@dataclass(frozen=True, slots=True)
class SagaTimes:
    """One saga: when it started and finished (epoch seconds; None while running)."""

    created: float
    finished: float | None
    status: str
    reason: str | None = None

    @property
    def latency(self) -> float | None:
        return None if self.finished is None else self.finished - self.created


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of values sorted ascending."""
    if not ordered:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class Latency:
    """Milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float


def latency_of(seconds: Iterable[float]) -> Latency | None:
    """Percentiles of ``seconds``, in milliseconds; None for no values."""
    ordered = sorted(s * 1000 for s in seconds)
    if not ordered:
        return None
    return Latency(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
    )


def finished_between(sagas: Iterable[SagaTimes], start: float, end: float) -> int:
    """Sagas that finished in ``[start, end)``."""
    return sum(1 for s in sagas if s.finished is not None and start <= s.finished < end)


def created_between(sagas: Iterable[SagaTimes], start: float, end: float) -> list[SagaTimes]:
    return [s for s in sagas if start <= s.created < end]


@dataclass(frozen=True)
class Second:
    """One second of the run: sagas finished in it, and their p99 latency (ms)."""

    second: int
    finished: int
    p99_ms: float | None


def per_second(sagas: Iterable[SagaTimes], start: float, seconds: int) -> list[Second]:
    """Bucket finished sagas by the whole second after ``start`` in which they finished;
    ``seconds`` buckets, empty ones included, later finishes left out."""
    buckets: list[list[float]] = [[] for _ in range(max(0, seconds))]
    for saga in sagas:
        if saga.finished is None or saga.finished < start:
            continue
        index = int(saga.finished - start)
        if index < len(buckets):
            buckets[index].append(saga.finished - saga.created)
    result = []
    for i, latencies in enumerate(buckets):
        ordered = sorted(v * 1000 for v in latencies)
        p99 = percentile(ordered, 99) if ordered else None
        result.append(Second(i, len(ordered), p99))
    return result


def series(sagas: Sequence[SagaTimes], load_start: float, end: float) -> list[Second]:
    """Every finished saga of a run, bucketed by the second in which it finished.

    The first bucket starts at the load's start, or at the first saga's creation when
    that came earlier (the null chain's source starts its sagas as soon as it is
    ready, a moment before the bench notes the load's start); the last bucket holds the
    last finish, or the window's end. So the buckets add up to every finished saga.
    """
    origin = min([load_start, *(s.created for s in sagas)])
    last = max((s.finished for s in sagas if s.finished is not None), default=end)
    return per_second(sagas, origin, math.floor(max(last, end) - origin) + 1)


def histogram(values_ms: Sequence[float], bins: int = 40) -> tuple[list[float], list[int]]:
    """Edges and counts of ``bins`` equal bins from 0 to the largest value."""
    if not values_ms:
        return [], []
    top = max(values_ms) or 1.0
    width = top / bins
    counts = [0] * bins
    for value in values_ms:
        counts[min(int(value / width), bins - 1)] += 1
    return [i * width for i in range(bins + 1)], counts


@dataclass(frozen=True)
class Outcomes:
    completed: int
    cancelled: int
    unfinished: int
    top_reasons: list[tuple[str, int]]


def outcomes_of(sagas: Iterable[SagaTimes]) -> Outcomes:
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for saga in sagas:
        statuses[saga.status] += 1
        if saga.status == CANCELLED:
            reasons[saga.reason or "no reason given"] += 1
    finished = statuses[COMPLETED] + statuses[CANCELLED]
    return Outcomes(
        completed=statuses[COMPLETED],
        cancelled=statuses[CANCELLED],
        unfinished=sum(statuses.values()) - finished,
        top_reasons=reasons.most_common(TOP_REASONS),
    )


@dataclass
class RunResult:
    """One measured run: the system under one load, or the null-chain baseline."""

    name: str
    system: str  # "real", "embedded" or "null-chain"
    load: dict[str, Any]
    window: dict[str, float]  # start/end (epoch seconds) and length of the window
    placed: int  # orders accepted (201) over the whole run, warm-up included
    finished: int  # of those, how many reached a terminal status
    finished_in_window: int  # sagas that reached a terminal status inside the window
    drained: bool
    throughput: float  # sagas finished per second in the window
    latency_ms: Latency | None
    outcomes: Outcomes
    cpu: dict[str, dict[str, Any]]  # process group → seconds, ms per saga, cores, pids
    machine: dict[str, float]
    generator: dict[str, Any] = field(default_factory=dict)
    post_latency_ms: Latency | None = None
    invariants: list[dict[str, Any]] = field(default_factory=list)
    series: list[Second] = field(default_factory=list)
    histogram: dict[str, list[float] | list[int]] = field(default_factory=dict)

    @property
    def invariants_ok(self) -> bool | None:
        if not self.invariants:
            return None
        return all(check["ok"] for check in self.invariants)


def cpu_table(
    seconds: dict[str, tuple[float, list[int]]], finished: int, window: float
) -> dict[str, dict[str, Any]]:
    """Per process group: CPU seconds in the window, ms per finished saga, cores used."""
    return {
        group: {
            "cpu_s": round(cpu, 3),
            "ms_per_saga": round(cpu * 1000 / finished, 3) if finished else None,
            "cores": round(cpu / window, 3) if window > 0 else None,
            "pids": pids,
        }
        for group, (cpu, pids) in seconds.items()
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """``document`` (dataclasses included) as indented JSON."""
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
