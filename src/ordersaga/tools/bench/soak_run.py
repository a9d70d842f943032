"""A soak on the real stack: the services started with short retention windows, the rate
found by a short --max run unless given, then one long open-loop run sampled at every
window's edge (resident memory of every process, rows of every table)."""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.tools.bench.load import LoadSpec
from ordersaga.tools.bench.measure import resident_bytes
from ordersaga.tools.bench.results import RunResult
from ordersaga.tools.bench.rows import count_rows
from ordersaga.tools.bench.run import Tick, groups_of, read_sagas, run_system
from ordersaga.tools.bench.soak import (
    RATE_SHARE,
    Judgement,
    SoakPlan,
    SoakSample,
    SoakWindow,
    judge,
    soak_windows,
)
from ordersaga.tools.bench.stack import RealStack

log = logging.getLogger(__name__)

Progress = Callable[[str, LoadSpec], AbstractContextManager[Tick]]
"""Opens a progress display for a run and gives its tick."""
OnSample = Callable[[int, SoakSample], None]


@dataclass(frozen=True)
class SoakOptions:
    window: float = 60.0  # seconds per window (a figure per window)
    retention: float = 60.0  # the inbox's and the finished sagas' windows
    retention_interval: float = 10.0  # seconds between pruning rounds
    probe: float = 20.0  # seconds of the --max run that finds the rate, without --rate

    def environment(self) -> dict[str, str]:
        """The services' settings that make them prune during the soak."""
        return {
            "ORDERSAGA_INBOX_RETENTION": f"{self.retention:g}",
            "ORDERSAGA_SAGA_RETENTION": f"{self.retention:g}",
            "ORDERSAGA_RETENTION_INTERVAL": f"{self.retention_interval:g}",
        }


class Sampler:
    """Resident memory per process group and rows per table, every ``every`` seconds."""

    def __init__(
        self,
        groups: Callable[[], Mapping[str, Sequence[int]]],
        engines: Mapping[str, AsyncEngine],
        tables: Mapping[str, list[Table]],
        every: float,
        on_sample: OnSample = lambda index, sample: None,
    ) -> None:
        self.groups = groups
        self.engines = engines
        self.tables = tables
        self.every = every
        self.on_sample = on_sample
        self.samples: list[SoakSample] = []

    async def take(self) -> SoakSample:
        at = time.time()
        rss = {group: resident_bytes(pids) for group, pids in self.groups().items()}
        try:
            rows = await count_rows(self.engines, self.tables)
        except Exception as error:  # a count that failed once must not end a long soak
            log.warning("could not count rows (%r); this window has none", error)
            rows = {}
        sample = SoakSample(at, rss, rows)
        self.samples.append(sample)
        self.on_sample(len(self.samples) - 1, sample)
        return sample

    async def run_for(self, seconds: float) -> None:
        """A sample now and at every ``every`` seconds within ``seconds``; returns after
        ``seconds`` (a last partial window is not sampled)."""
        began = time.monotonic()
        await self.take()
        for edge in range(1, int(seconds // self.every) + 1):
            await asyncio.sleep(max(0.0, began + edge * self.every - time.monotonic()))
            await self.take()
        await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))


@dataclass
class SoakResult:
    plan: SoakPlan
    run: RunResult
    probe: RunResult | None
    windows: list[SoakWindow]
    judgements: list[Judgement]

    @property
    def sound(self) -> bool:
        """Every saga finished and every invariant held."""
        return self.run.drained and self.run.invariants_ok is not False

    @property
    def bounded(self) -> bool:
        """No judged process's memory and no pruned or transient table grew."""
        return all(j.ok for j in self.judgements if j.kind in ("memory", "rows"))


async def run_soak(
    stack: RealStack,
    spec: LoadSpec,
    options: SoakOptions,
    tables: Mapping[str, list[Table]],
    progress: Progress,
    *,
    drain_timeout: float,
    on_sample: OnSample = lambda index, sample: None,
) -> SoakResult:
    """The probe (when ``spec`` has no rate), then the soak, on a started ``stack``."""
    probe = None
    if spec.rate is None:
        probe_spec = replace(spec, duration=options.probe)
        with progress("probe (max)", probe_spec) as tick:
            probe = await run_system(stack, probe_spec, "probe", tick, drain_timeout)
        spec = replace(spec, rate=max(1.0, round(probe.throughput * RATE_SHARE, 1)))
    assert spec.rate is not None
    groups = groups_of(stack)
    sampler = Sampler(groups, stack.engines, tables, options.window, on_sample)
    with progress("soak", spec) as tick:
        run = await run_system(stack, spec, "soak", tick, drain_timeout, sampler.run_for)
    sagas = await read_sagas(stack.engines["order"], run.window["load_start"])
    plan = SoakPlan(
        rate=spec.rate,
        window=options.window,
        retention=options.retention,
        retention_interval=options.retention_interval,
        judged_groups=frozenset([*stack.process_groups(), "bench"]),
    )
    windows = soak_windows(sagas, sampler.samples)
    return SoakResult(plan, run, probe, windows, judge(windows, plan))
