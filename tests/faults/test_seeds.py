"""Hundreds of seeded runs of the whole in-process system under injected faults.

Each seed builds a fresh system on a :class:`FaultyBroker`, with every service's database
behind a :class:`FaultyEngine`, places a batch of orders that oversubscribes stock and
money (retrying, with the same ``Idempotency-Key``, what the API answers with a 5xx),
waits until the system is quiet and checks every invariant of the design.
``ORDERSAGA_FUZZ_SEEDS`` chooses the seeds: a count (``500``: seeds 0 to 499), a range
(``1000-1999``) or a list (``17,42``); ``ORDERSAGA_FUZZ_ORDERS`` how many orders each places
(``10-20``). A failure prints the command that runs it again.

The seeds are shared out among worker processes, two per core
(``ORDERSAGA_FUZZ_WORKERS``); each runs its seeds one after another in a fresh event loop,
with their databases in memory-backed storage when the machine has it. Two per core
because a seed spends much of its time waiting (step timeouts of 0.3 s, the quiet check
every 30 ms): 200 seeds took 56 s with four workers on two cores, 89 s with two.
"""

import asyncio
import multiprocessing
import os
import random
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.config import Settings
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.services.orchestrator import tables as orchestrator_tables
from ordersaga.services.order import tables as order_tables
from ordersaga.services.payment import tables as payment_tables
from ordersaga.services.registry import SERVICE_NAMES
from ordersaga.services.stock import tables as stock_tables
from ordersaga.tools.client import ApiError, OrderClient
from ordersaga.tools.verify import verify
from tests.faults.faulty_engine import DB_FAULT_KINDS, DatabaseFaults, DbFaultPlan
from tests.faults.injector import CrashAfterCommit, FaultLog, FaultPlan, FaultyBroker, inject_poison
from tests.system.conftest import failed

DEFAULT_SEEDS = 200
DEFAULT_ORDERS = "3-8"
STEP_TIMEOUT = 0.3
QUIET_TIMEOUT = 30.0
PLACE_ATTEMPTS = 30

OUTBOXES: Mapping[str, Table] = {
    "order": order_tables.outbox,
    "orchestrator": orchestrator_tables.outbox,
    "stock": stock_tables.outbox,
    "payment": payment_tables.outbox,
}


def seeds_from(spec: str) -> list[int]:
    """The seeds ``ORDERSAGA_FUZZ_SEEDS`` asks for: a count, ``first-last`` or ``a,b,c``."""
    if "," in spec:
        return [int(s) for s in spec.split(",") if s.strip()]
    if "-" in spec:
        first, last = spec.split("-", 1)
        return list(range(int(first), int(last) + 1))
    return list(range(int(spec)))


def fault_settings() -> Settings:
    """Short timeouts, so that late replies and lost compensations play out in a second."""
    return Settings(
        partitions=2,
        reserve_timeout=STEP_TIMEOUT,
        payment_timeout=STEP_TIMEOUT,
        compensation_timeout=0.1,
        timer_interval=0.05,
        max_compensation_attempts=1000,
    )


@dataclass(frozen=True)
class OrderAsk:
    user: int
    product: int
    quantity: int


def orders_for(rng: random.Random, spec: str) -> list[OrderAsk]:
    """Orders of the sample users and products, ``spec`` (``low-high``) of them: often
    more than the stock and the money allow."""
    low, _, high = spec.partition("-")
    return [
        OrderAsk(rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3))
        for _ in range(rng.randint(int(low), int(high or low)))
    ]


async def _outbox_rows(engines: Mapping[str, AsyncEngine]) -> int:
    total = 0
    for name, table in OUTBOXES.items():
        async with engines[name].connect() as conn:
            total += int(await conn.scalar(select(func.count()).select_from(table)) or 0)
    return total


async def quiet(system: EmbeddedSystem, broker: FaultyBroker) -> bool:
    """Nothing held back, every outbox empty, every record consumed and committed."""
    if broker.held() or not broker.caught_up():
        return False
    return not await _outbox_rows(system.engines)


async def wait_until_settled(system: EmbeddedSystem, broker: FaultyBroker) -> bool:
    """Quiet and every order terminal, twice in a row (a relay or timer may be mid-step)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUIET_TIMEOUT
    settled = 0
    while settled < 2:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.03)
        if await quiet(system, broker) and not await system.pending_orders():
            settled += 1
        else:
            settled = 0
    return True


@asynccontextmanager
async def served(system: EmbeddedSystem) -> AsyncIterator[OrderClient]:
    """The order API as a server answers it: an error it did not handle is a 500."""
    transport = httpx.ASGITransport(app=system.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordersaga") as http:
        yield OrderClient(http, system.tokens)


async def place(api: OrderClient, ask: OrderAsk, key: str, log: FaultLog) -> None:
    """Place ``ask`` as a careful client does: a 5xx is retried with the same key."""
    for attempt in range(1, PLACE_ATTEMPTS + 1):
        try:
            await api.place(ask.user, ask.product, ask.quantity, idempotency_key=key)
            return
        except ApiError as error:
            if not str(error).startswith("5") or attempt == PLACE_ATTEMPTS:
                log.add("refused", str(error))
                return
            log.add("api-retried", str(error))
        await asyncio.sleep(0.01 * attempt)


async def run_seed(seed: int, data_dir: Path, orders: str = DEFAULT_ORDERS) -> "Outcome":
    """Run ``seed``; the invariants that failed (empty when all hold), what was injected."""
    rng = random.Random(seed)
    plan = FaultPlan.draw(rng, STEP_TIMEOUT)
    db_plan = DbFaultPlan.draw(rng, SERVICE_NAMES)
    log = FaultLog()
    settings = fault_settings()
    broker = FaultyBroker(rng, plan, log, settings.partitions)
    crashes = CrashAfterCommit(rng, plan.crash_after_commit, log)
    asks = orders_for(rng, orders)
    database_faults = DatabaseFaults(rng, db_plan, log)
    system = EmbeddedSystem(
        data_dir,
        settings,
        crash_points=crashes,
        broker=broker,
        engine_wrapper=database_faults.wrap,
    )
    try:
        async with system, served(system) as api:
            inject_poison(broker, plan.poison)
            for index, ask in enumerate(asks):
                await place(api, ask, f"seed{seed}-order{index}", log)
            if not await wait_until_settled(system, broker):
                checks = await verify(system.engines)
                stuck = f"not quiet after {QUIET_TIMEOUT}s (held {broker.held()})"
                return [stuck, *failed(checks)], log, plan, db_plan
            return failed(await verify(system.engines)), log, plan, db_plan
    finally:
        await broker.close()


SEEDS = seeds_from(os.environ.get("ORDERSAGA_FUZZ_SEEDS") or str(DEFAULT_SEEDS))
ORDERS = os.environ.get("ORDERSAGA_FUZZ_ORDERS") or DEFAULT_ORDERS
WORKERS = int(os.environ.get("ORDERSAGA_FUZZ_WORKERS") or 2 * (os.cpu_count() or 1))

Outcome = tuple[list[str], FaultLog, FaultPlan, DbFaultPlan]


def _scratch_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def run_seeds(seeds: list[int], orders: str) -> dict[int, Outcome]:
    """Run ``seeds`` one after another (in a worker process); each seed's outcome."""
    results: dict[int, Outcome] = {}
    for seed in seeds:
        data_dir = Path(tempfile.mkdtemp(prefix=f"ordersaga-seed{seed}-", dir=_scratch_root()))
        try:
            results[seed] = asyncio.run(run_seed(seed, data_dir, orders))
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    return results


@pytest.fixture(scope="module")
def outcomes() -> dict[int, Outcome]:
    """Every seed run once, before the first of their tests, shared out among workers."""
    workers = max(1, min(WORKERS, len(SEEDS)))
    shares = [SEEDS[i::workers] for i in range(workers)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        results: dict[int, Outcome] = {}
        for share in pool.map(run_seeds, shares, [ORDERS] * workers):
            results.update(share)
    return results


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_every_invariant_holds_under_injected_faults(
    seed: int, outcomes: dict[int, Outcome]
) -> None:
    problems, log, plan, db_plan = outcomes[seed]
    if problems:
        again = (
            f"ORDERSAGA_FUZZ_SEEDS={seed}-{seed} ORDERSAGA_FUZZ_ORDERS={ORDERS} "
            "pytest tests/faults/test_seeds.py"
        )
        pytest.fail(
            f"seed {seed}: "
            + "; ".join(problems)
            + f"\nagain: {again}\n{plan}\n{db_plan}\n{log.summary()}",
            pytrace=False,
        )


def test_the_seeds_between_them_inject_every_kind_of_fault(
    outcomes: dict[int, Outcome],
) -> None:
    injected = set()
    for _, log, _, _ in outcomes.values():
        injected |= set(log.counts)
    if len(outcomes) >= 50:
        expected = {
            "duplicate",
            "delay",
            "late-reply",
            "relay-crash",
            "relay-half-batch",
            "delivered-twice",
            "redelivery",
            "crash-after-commit",
            "poison",
        }
        assert expected <= injected, f"never injected: {sorted(expected - injected)}"


PLACES = {
    *(f"{service} {part}" for service in SERVICE_NAMES for part in ("consumer", "relay")),
    "orchestrator timer",
    "order api",
}


def test_the_seeds_between_them_inject_every_kind_of_database_fault_everywhere(
    outcomes: dict[int, Outcome],
) -> None:
    injected: set[str] = set()
    places: set[str] = set()
    on_route: set[str] = set()
    for _, log, _, _ in outcomes.values():
        injected |= set(log.counts)
        places |= set(log.places)
        on_route |= set(log.on_driver_route)
    if len(outcomes) >= 50:
        assert injected >= DB_FAULT_KINDS, f"never injected: {sorted(DB_FAULT_KINDS - injected)}"
        assert places >= PLACES, f"never struck: {sorted(PLACES - places)}"
        # The hot statements (inbox, outbox, saga store, holdings) run on the driver.
        hot = {p for p in PLACES if p.endswith((" consumer", " relay"))}
        assert on_route >= hot, f"never struck on the driver route: {sorted(hot - on_route)}"
