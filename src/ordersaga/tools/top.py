"""What ``ordersaga top`` shows, computed from two rounds of scrapes of the metrics
endpoints: rates and latency percentiles over the interval between them, gauges as they
stand in the later round.

Counters are differenced per endpoint (a replica that restarted, whose counters went
down, counts from zero, as Prometheus' ``rate`` does); percentiles come from the
differences of the saga duration histogram's buckets, interpolated within a bucket as
``histogram_quantile`` does. Database figures (outbox, parked), which every replica of a
service reports alike, are taken once per service (the largest), never summed.
"""

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from ordersaga.runtime.metrics import replica_metrics_port
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.tools.scrape import Scrape, scrape

FINISHED = "ordersaga_sagas_finished_total"
STARTED = "ordersaga_sagas_started_total"
DURATION = "ordersaga_saga_duration_seconds"
CONSUMED = "ordersaga_messages_consumed_total"


def replica_urls(host: str, base: int, replicas: int) -> list[str]:
    """The metrics endpoints of ``ordersaga up --replicas N`` on ``host``."""
    return [
        f"http://{host}:{replica_metrics_port(base, service, r)}/metrics"
        for service in SERVICE_NAMES
        for r in range(1, replicas + 1)
    ]


@dataclass(frozen=True)
class Replica:
    """One endpoint's process: what it runs, its CPU (cores busy) and memory."""

    url: str
    name: str
    cpu_cores: float | None
    memory_bytes: float | None
    error: str | None = None


@dataclass(frozen=True)
class Frame:
    """One screen of ``top``; :meth:`as_json` for scripts."""

    interval_seconds: float
    sagas_started_per_second: float
    sagas_finished_per_second: dict[str, float]
    """By outcome (completed, cancelled)."""
    sagas_finished_total: dict[str, float]
    sagas_finished_by_reason: dict[str, float]
    saga_p50_seconds: float | None
    """Over the sagas finished in the interval; None if none did."""
    saga_p99_seconds: float | None
    lag: dict[str, float]
    """Messages behind, by consumer group."""
    outbox_waiting: dict[str, float]
    outbox_oldest_seconds: dict[str, float]
    parked: float
    unfinished: float
    dead_letters_total: float
    replicas: list[Replica] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _by(scrape: Scrape, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for sample in scrape.select(name):
        out[sample.labels.get(label, "")] += sample.value
    return dict(out)


def _increase(before: Scrape | None, after: Scrape, name: str, **labels: str) -> float:
    """How much counter ``name`` grew between the two scrapes of one endpoint."""
    now = after.total(name, **labels)
    if before is None or before.error is not None:
        return 0.0
    then = before.total(name, **labels)
    return now - then if now >= then else now  # a restart: counted from zero


def _bucket_increase(before: Scrape | None, after: Scrape, name: str) -> dict[float, float]:
    """Per upper bound, how much the cumulative buckets of histogram ``name`` grew."""
    grown: dict[float, float] = defaultdict(float)
    then: dict[float, float] = defaultdict(float)
    if before is not None and before.error is None:
        for sample in before.select(f"{name}_bucket"):
            then[float(sample.labels["le"])] += sample.value
    now: dict[float, float] = defaultdict(float)
    for sample in after.select(f"{name}_bucket"):
        now[float(sample.labels["le"])] += sample.value
    restarted = any(now[le] < then[le] for le in now)
    for le, value in now.items():
        grown[le] = value if restarted else value - then[le]
    return dict(grown)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q``-quantile of cumulative ``buckets`` (upper bound → count), interpolated
    linearly within its bucket; the largest finite bound if it falls in ``+Inf``; None
    when the buckets are empty."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank and count > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _replica(before: Scrape | None, after: Scrape, seconds: float) -> Replica:
    if after.error is not None:
        return Replica(after.url, "?", None, None, after.error)
    info = after.select("ordersaga_replica_info")
    runs = sorted(f"{s.labels['service']}-{s.labels['replica']}" for s in info)
    name = runs[0] if len(runs) == 1 else f"embedded ({len(runs)} services)"
    cpu = None
    if before is not None and before.error is None and seconds > 0:
        cpu = _increase(before, after, "process_cpu_seconds_total") / seconds
    memory = after.total("process_resident_memory_bytes") or None
    return Replica(after.url, name, cpu, memory)


def _largest_by(scrapes: Sequence[Scrape], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in scrapes:
        for key, value in _by(s, name, label).items():
            out[key] = max(out.get(key, value), value)
    return out


def frame(
    before: Mapping[str, Scrape], after: Mapping[str, Scrape], seconds: float
) -> Frame:
    """The frame from two rounds of scrapes (by URL), ``seconds`` apart."""
    up = [s for s in after.values() if s.error is None]
    per_second = 1 / seconds if seconds > 0 else 0.0
    finished_rate: dict[str, float] = defaultdict(float)
    started = 0.0
    buckets: dict[float, float] = defaultdict(float)
    for url, now in after.items():
        if now.error is not None:
            continue
        then = before.get(url)
        started += _increase(then, now, STARTED) * per_second
        for outcome in ("completed", "cancelled"):
            finished_rate[outcome] += _increase(then, now, FINISHED, outcome=outcome) * per_second
        for le, grown in _bucket_increase(then, now, DURATION).items():
            buckets[le] += grown
    totals: dict[str, float] = defaultdict(float)
    reasons: dict[str, float] = defaultdict(float)
    for s in up:
        for outcome, value in _by(s, FINISHED, "outcome").items():
            totals[outcome] += value
        for reason, value in _by(s, FINISHED, "reason_class").items():
            reasons[reason] += value
    lag: dict[str, float] = defaultdict(float)
    for s in up:
        for group, value in _by(s, "ordersaga_consumer_lag", "group").items():
            lag[group] += value
    parked = _largest_by(up, "ordersaga_sagas_parked", "service")
    unfinished = _largest_by(up, "ordersaga_sagas_unfinished", "service")
    return Frame(
        interval_seconds=seconds,
        sagas_started_per_second=started,
        sagas_finished_per_second=dict(finished_rate),
        sagas_finished_total=dict(totals),
        sagas_finished_by_reason=dict(reasons),
        saga_p50_seconds=quantile(0.5, buckets),
        saga_p99_seconds=quantile(0.99, buckets),
        lag=dict(lag),
        outbox_waiting=_largest_by(up, "ordersaga_outbox_rows_waiting", "service"),
        outbox_oldest_seconds=_largest_by(up, "ordersaga_outbox_oldest_age_seconds", "service"),
        parked=sum(parked.values()),
        unfinished=sum(unfinished.values()),
        dead_letters_total=sum(s.total(CONSUMED, result="dead_lettered") for s in up),
        replicas=[_replica(before.get(url), s, seconds) for url, s in after.items()],
    )


class Watcher:
    """Scrapes ``urls`` each round; :meth:`next` gives the frame since the last round."""

    def __init__(self, http: httpx.AsyncClient, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("no metrics endpoint to read")
        self._http = http
        self._urls = list(urls)
        self._last: dict[str, Scrape] = {}
        self._last_at: float | None = None

    async def round(self) -> dict[str, Scrape]:
        at = time.monotonic()
        found = await asyncio.gather(*(scrape(self._http, url, at) for url in self._urls))
        return dict(zip(self._urls, found, strict=True))

    async def next(self) -> Frame:
        now = await self.round()
        at = time.monotonic()
        seconds = at - self._last_at if self._last_at is not None else 0.0
        result = frame(self._last, now, seconds)
        self._last, self._last_at = now, at
        return result
