"""One measured run: load for the warm-up and the window, CPU sampled at the window's
edges, then every saga waited for, the invariants checked and the figures computed."""

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.services.orchestrator.tables import count_open_sagas
from ordersaga.services.order.tables import orders
from ordersaga.tools.bench.load import LoadGenerator, LoadSpec
from ordersaga.tools.bench.measure import (
    Sample,
    cpu_between,
    infrastructure_pids,
    machine_between,
    take_sample,
)
from ordersaga.tools.bench.results import (
    COMPLETED,
    RunResult,
    SagaTimes,
    cpu_table,
    created_between,
    finished_between,
    histogram,
    latency_of,
    outcomes_of,
    series,
)
from ordersaga.tools.bench.stack import NullChain
from ordersaga.tools.client import Tokens
from ordersaga.tools.verify import verify

PENDING = "ORDER_CREATED"
TICK = 0.5  # seconds between progress updates (and the closed loop's brake)
FIRST_SAGA_WAIT = 60.0  # seconds the warm-up goes on, at most, for the first saga to finish

Tick = Callable[[float, int, int], None]
"""Progress: seconds since the load started, orders placed, sagas finished."""


class System(Protocol):
    @property
    def system(self) -> str: ...

    @property
    def api(self) -> str: ...

    @property
    def engines(self) -> dict[str, AsyncEngine]: ...

    @property
    def tokens(self) -> Tokens | None: ...

    def process_groups(self) -> dict[str, list[int]]: ...


@dataclass(frozen=True)
class Window:
    load_start: float  # epoch seconds
    start: float
    end: float
    cpu_start: Sample
    cpu_end: Sample
    loop_start: float = 0.0  # the same edges on the event loop's clock
    loop_end: float = 0.0
    sent: int = 0  # requests sent inside the window

    @property
    def length(self) -> float:
        return self.end - self.start


def groups_of(system: System | NullChain) -> Callable[[], Mapping[str, Sequence[int]]]:
    """The process groups a run measures: the system's, the servers it uses, the bench."""

    def groups() -> Mapping[str, Sequence[int]]:
        found: dict[str, Sequence[int]] = dict(system.process_groups())
        if system.system != "embedded":
            infra = infrastructure_pids()
            if system.system == "null-chain":  # no database on its path
                infra = {k: v for k, v in infra.items() if k == "kafka"}
            found.update(infra)
        found["bench"] = [os.getpid()]
        return found

    return groups


During = Callable[[float], Awaitable[None]]
"""What runs for the window's length (by default a sleep; a soak samples meanwhile)."""


async def _window(
    spec: LoadSpec,
    groups: Callable[[], Mapping[str, Sequence[int]]],
    sent: Callable[[], int] = lambda: 0,
    during: During = asyncio.sleep,
    first_finished: asyncio.Event | None = None,
) -> Window:
    """The warm-up, then the measured window. With ``first_finished`` the warm-up also
    lasts until the system has finished its first saga (at most ``FIRST_SAGA_WAIT``
    longer): a system still joining its groups and opening its connections is not warm,
    and a window that opens before anything can finish measures the start-up."""
    loop = asyncio.get_running_loop()
    load_start = time.time()
    await asyncio.sleep(spec.warmup)
    if first_finished is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_finished.wait(), FIRST_SAGA_WAIT)
    start, loop_start, sent_start = time.time(), loop.time(), sent()
    cpu_start = take_sample(groups)
    await during(spec.duration)
    cpu_end = take_sample(groups)
    end, loop_end, sent_end = time.time(), loop.time(), sent()
    return Window(
        load_start, start, end, cpu_start, cpu_end, loop_start, loop_end, sent_end - sent_start
    )


async def _pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(orders).where(orders.c.status == PENDING)
        return int((await conn.execute(query)).scalar_one())


async def _watch(
    engine: AsyncEngine, generator: LoadGenerator, tick: Tick, first_finished: asyncio.Event
) -> None:
    started = time.monotonic()
    while True:
        with contextlib.suppress(Exception):  # a slow count must not end the run
            accepted = generator.stats.accepted
            finished = max(0, accepted - await _pending(engine))
            generator.note_finished(finished)
            if finished:
                first_finished.set()
            tick(time.monotonic() - started, accepted, finished)
        await asyncio.sleep(TICK)


async def _drain(engines: Mapping[str, AsyncEngine], timeout: float) -> bool:
    """Wait until no order is pending and every saga is closed (the order service
    acknowledged its outcome); False if ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while await _pending(engines["order"]) or await count_open_sagas(engines["orchestrator"]):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def read_sagas(engine: AsyncEngine, since: float) -> list[SagaTimes]:
    """Every order created since ``since`` (epoch seconds), with its times."""
    query = select(orders.c.created_at, orders.c.updated_at, orders.c.status, orders.c.reason)
    query = query.where(orders.c.created_at >= datetime.fromtimestamp(since, UTC))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        SagaTimes(
            created=row.created_at.timestamp(),
            finished=None if row.status == PENDING else row.updated_at.timestamp(),
            status=row.status,
            reason=row.reason,
        )
        for row in rows
    ]


async def run_system(
    system: System,
    spec: LoadSpec,
    name: str,
    tick: Tick,
    drain_timeout: float,
    during: During = asyncio.sleep,
) -> RunResult:
    """Load ``system`` as ``spec`` says, wait for its sagas, check and measure."""
    generator = LoadGenerator(system.api, spec, system.tokens)
    order_engine = system.engines["order"]
    stop, first_finished = asyncio.Event(), asyncio.Event()
    loading = asyncio.create_task(generator.run(stop))
    watching = asyncio.create_task(_watch(order_engine, generator, tick, first_finished))
    try:
        window = await _window(
            spec, groups_of(system), lambda: generator.stats.sent, during, first_finished
        )
        stop.set()
        await loading
        drained = await _drain(system.engines, drain_timeout)
    finally:
        stop.set()
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        if not loading.done():
            await loading
    checks = await verify(system.engines)
    sagas = await read_sagas(order_engine, window.load_start)
    result = build_result(name, system.system, spec, window, sagas, drained)
    result.placed = generator.stats.accepted
    result.invariants = [
        {"number": c.number, "name": c.name, "ok": c.ok, "figures": c.figures} for c in checks
    ]
    answered = generator.stats.answered
    result.post_latency_ms = latency_of(
        lat for due, lat in answered if window.loop_start <= due < window.loop_end
    )
    result.generator = _generator_figures(generator, window, result.cpu.get("bench", {}))
    return result


def _generator_figures(
    generator: LoadGenerator, window: Window, bench_cpu: Mapping[str, Any]
) -> dict[str, Any]:
    """What the load generator did, and its CPU per request in the window (which also
    pays for the progress queries)."""
    cpu_s = bench_cpu.get("cpu_s") or 0.0
    return {
        "sent": generator.stats.sent,
        "refused": {str(k): v for k, v in generator.stats.refused.items()},
        "errors": generator.stats.errors,
        "waited_for_a_connection": generator.pool.waited,
        "connections_opened": generator.pool.opened,
        "sent_in_window": window.sent,
        "cpu_us_per_request": round(cpu_s * 1e6 / window.sent, 1) if window.sent else None,
    }


async def run_null_chain(
    chain: NullChain, spec: LoadSpec, tick: Tick, ready_timeout: float
) -> RunResult:
    """The null chain for the warm-up and the window, measured as the system is."""
    try:
        await chain.start(ready_timeout)
        started = time.monotonic()
        ticking = asyncio.create_task(_tick_time(started, tick))
        try:
            window = await _window(spec, groups_of(chain))
        finally:
            ticking.cancel()
        await chain.finish(timeout=30.0)
    finally:
        await chain.stop()
    raw: dict[str, Any] = orjson.loads(Path(chain.result).read_bytes())
    sagas = [
        SagaTimes(created=s, finished=f, status=COMPLETED if f is not None else PENDING)
        for s, f in raw["sagas"]
    ]
    drained = all(s.finished is not None for s in sagas)
    return build_result("null-chain", "null-chain", spec, window, sagas, drained)


async def _tick_time(started: float, tick: Tick) -> None:
    while True:
        tick(time.monotonic() - started, 0, 0)
        await asyncio.sleep(TICK)


def build_result(
    name: str,
    system: str,
    spec: LoadSpec,
    window: Window,
    sagas: list[SagaTimes],
    drained: bool,
) -> RunResult:
    """The figures of one run from its sagas' times and its CPU samples."""
    in_window = finished_between(sagas, window.start, window.end)
    latencies = [s.latency for s in created_between(sagas, window.start, window.end)]
    latency = latency_of(v for v in latencies if v is not None)
    cpu = cpu_between(window.cpu_start, window.cpu_end)
    busy_s, busy_share = machine_between(window.cpu_start, window.cpu_end)
    edges, counts = histogram([v * 1000 for v in latencies if v is not None])
    return RunResult(
        name=name,
        system=system,
        load={
            "mode": spec.mode,
            "rate": spec.rate,
            "concurrency": spec.concurrency if spec.rate is None else None,
            "max_in_flight": spec.max_in_flight if spec.rate is None else None,
            "warmup_s": spec.warmup,
            "duration_s": spec.duration,
        },
        window={
            "load_start": window.load_start,
            "start": window.start,
            "end": window.end,
            "length_s": round(window.length, 3),
        },
        placed=len(sagas),
        finished=sum(1 for s in sagas if s.finished is not None),
        finished_in_window=in_window,
        drained=drained,
        throughput=round(in_window / window.length, 1) if window.length > 0 else 0.0,
        latency_ms=latency,
        outcomes=outcomes_of(sagas),
        cpu=cpu_table({g: (u.seconds, u.pids) for g, u in cpu.items()}, in_window, window.length),
        machine={
            "cpus": float(os.cpu_count() or 1),
            "busy_cpu_s": round(busy_s, 3),
            "busy_cores": round(busy_s / window.length, 3) if window.length > 0 else 0.0,
            "busy_share": round(busy_share, 4),
        },
        series=series(sagas, window.load_start, window.end),
        histogram={"edges_ms": edges, "counts": counts},
    )
