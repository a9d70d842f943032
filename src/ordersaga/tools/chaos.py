"""A chaos run on the real stack: orders placed continuously while replicas are killed
and the broker and the databases are restarted; then, once quiet, the invariants.

Orders are placed for the run's duration, and longer if the faults are not all in by
then (an infrastructure restart under load can take half a minute).

Faults follow a schedule drawn from a seed, so a failing run can be replayed. The run
uses the configured infrastructure (``Settings``) and refuses databases that already
hold orders unless told to reuse them: ``verify`` counts every order it finds.

Orders are drawn from the chaos data set (:data:`ordersaga.tools.bench.data.CHAOS`, added to
the databases by the run) so that every path runs under the faults: most orders
complete, and a steady share is refused at the stock step and at the payment step (whose
refusal is compensated). A run that did not exercise them (under 30 % completed, or no
refusal for money) fails, as the sample data would make it: its stock is gone within
seconds.
"""

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.auth import setup as auth_setup
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.db.migrate import SchemaNotCurrent, require_current
from ordersaga.messaging.kafka_config import client_options
from ordersaga.runtime.processes import (
    ChildProcess,
    NotReady,
    OrderLoad,
    api_url,
    replica_process,
    sample_order,
    stop_all,
    wait_ready,
)
from ordersaga.services.order.tables import orders
from ordersaga.services.registry import SERVICE_NAMES, SERVICES
from ordersaga.tools.bench.data import CHAOS, add_data, chaos_order
from ordersaga.tools.chaos_kafka import CLUSTER_NODES, busiest_leader, hang_node, kill_node
from ordersaga.tools.verify import Check, snapshot, verify

INFRA_PARTS = ("kafka", "postgres", "mariadb")
# With --kafka cluster: the databases are restarted, and the cluster's nodes meet faults
# of their own (the busiest leader killed, a node hung) instead of a restart.
CLUSTER_INFRA_PARTS = ("postgres", "mariadb", "kafka3")
CLUSTER_FAULTS = ("leader-kill", "broker-stop")
Say = Callable[[str], None]


class ChaosError(Exception):
    """The run cannot start (infrastructure scripts absent, databases not empty...)."""


@dataclass(frozen=True)
class ChaosConfig:
    duration: float
    orders_per_second: float
    replicas: int = 2
    seed: int = 0
    infra_dir: Path = Path("infra")
    log_dir: Path = Path(".cache/chaos")
    reuse: bool = False
    quiet_timeout: float = 120.0
    ready_timeout: float = 90.0
    data: str = "chaos"  # "chaos" (the mix of outcomes) or "sample" (the demo's data)
    kafka: str = "single"  # "single" (a node, restarted) or "cluster" (kafka3's faults)

    @property
    def infra_parts(self) -> tuple[str, ...]:
        """What is brought back up before the system is judged."""
        return CLUSTER_INFRA_PARTS if self.kafka == "cluster" else INFRA_PARTS


MIN_COMPLETED_SHARE = 0.3
"""A run in which fewer orders completed did not exercise payments under the faults."""


def outcome_class(status: str, reason: str | None) -> str:
    """What became of an order, for the outcome mix: completed, refused by stock or by
    payment, cancelled for another reason (a deadline), or still open."""
    if status == "ORDER_COMPLETED":
        return "completed"
    if status != "ORDER_CANCELLED":
        return "open"
    for party in ("stock", "payment"):
        if (reason or "").startswith(f"{party}:"):
            return f"refused by {party}"
    return "cancelled otherwise"


@dataclass(frozen=True)
class PlannedFault:
    at: float
    kind: str  # "kill", "restart", or on a cluster "leader-kill" or "broker-stop"
    target: str  # a service name for a kill, an infrastructure part otherwise
    replica: int = 1
    pause: float = 1.0  # how long the target stays down


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    target: str
    took: float
    detail: str = ""


@dataclass
class ChaosReport:
    faults: list[Fault] = field(default_factory=list)
    placed: int = 0
    accepted: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    mix: Counter[str] = field(default_factory=Counter)
    """Orders by :func:`outcome_class`."""
    time_to_quiet: float | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def crashes(self) -> list[Fault]:
        return [f for f in self.faults if f.kind == "exited by itself"]

    @property
    def exercised(self) -> bool:
        """Enough orders completed, and some were refused for money (so payments and
        their compensations ran under the faults)."""
        total = sum(self.mix.values())
        completed = self.mix["completed"] / total if total else 0.0
        return completed >= MIN_COMPLETED_SHARE and self.mix["refused by payment"] > 0

    @property
    def ok(self) -> bool:
        """Every invariant holds, every order was taken, no replica died on its own, and
        the run exercised every path."""
        invariants = bool(self.checks) and all(c.ok for c in self.checks)
        taken = self.accepted == self.placed and not self.crashes
        return invariants and taken and self.exercised


def plan_faults(
    rng: random.Random,
    duration: float,
    replicas: int,
    extra_kills: int | None = None,
    kafka: str = "single",
) -> list[PlannedFault]:
    """One kill of every service, one restart of every infrastructure part, and a kill
    more for every 15 s of run, at random times in the middle of the run. On a cluster,
    Kafka is not restarted: its busiest leader is killed (back after 1-3 s and its start)
    and a node is hung for 12-20 s, longer than every session timeout."""
    extra = int(duration // 15) if extra_kills is None else extra_kills
    if kafka == "cluster":
        restarts = [("restart", p) for p in INFRA_PARTS if p != "kafka"]
        restarts += [(kind, "kafka3") for kind in CLUSTER_FAULTS]
    else:
        restarts = [("restart", p) for p in INFRA_PARTS]
    kinds = [("kill", s) for s in SERVICE_NAMES] + restarts
    kinds += [("kill", rng.choice(SERVICE_NAMES)) for _ in range(extra)]
    rng.shuffle(kinds)
    times = sorted(rng.uniform(0.1 * duration, 0.7 * duration) for _ in kinds)
    return [
        PlannedFault(at, kind, target, rng.randint(1, replicas), _pause(rng, kind))
        for at, (kind, target) in zip(times, kinds, strict=True)
    ]


def _pause(rng: random.Random, kind: str) -> float:
    return rng.uniform(12.0, 20.0) if kind == "broker-stop" else rng.uniform(1.0, 3.0)


class Infra:
    """``infra/infra.sh`` driven from here; its output goes to a log file."""

    def __init__(self, infra_dir: Path, log_dir: Path) -> None:
        self.script = infra_dir / "infra.sh"
        if not self.script.is_file():
            raise ChaosError(
                f"no {self.script} (pass --infra-dir): it restarts Kafka and the databases"
            )
        self._log = log_dir / "infra.log"

    async def run(self, action: str, *parts: str) -> None:
        with self._log.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                "bash", str(self.script), action, *parts, stdout=log, stderr=log
            )
            code = await process.wait()
        if code != 0:
            raise ChaosError(f"infra.sh {action} {' '.join(parts)} exited {code}; see {self._log}")


class ChaosRun:
    """Everything one run starts, and the faults it injected."""

    def __init__(self, config: ChaosConfig, settings: Settings, say: Say) -> None:
        config.log_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.settings = settings
        self.say = say
        self.infra = Infra(config.infra_dir, config.log_dir)
        kafka_env = {
            **os.environ,
            "ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "ORDERSAGA_KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),
        }
        self.replicas = [
            replica_process(s, n, config.log_dir, kafka_env)
            for s in SERVICE_NAMES
            for n in range(1, config.replicas + 1)
        ]
        self.report = ChaosReport()
        self._start = time.monotonic()
        self._killed: set[str] = set()
        self._stopping = False
        self.infra_touched = False
        self._watchers: list[asyncio.Task[None]] = []

    def restart_clock(self) -> None:
        """Fault times count from here: when the orders start."""
        self._start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def _record(self, kind: str, target: str, started: float, detail: str = "") -> None:
        fault = Fault(round(started, 1), kind, target, round(self.elapsed() - started, 1), detail)
        self.report.faults.append(fault)
        self.say(f"{fault.at:6.1f}s {kind} {target} {detail}".rstrip())

    async def watch(self, replica: ChildProcess) -> None:
        """Restart ``replica`` whenever it exits without being killed by the run."""
        while not self._stopping:
            assert replica.process is not None
            code = await replica.process.wait()
            if self._stopping or replica.name in self._killed:
                return
            self._record("exited by itself", replica.name, self.elapsed(), f"code {code}")
            await asyncio.sleep(1.0)  # no tight loop if it dies again at once
            if self._stopping:
                return
            await replica.start()

    async def kill(self, fault: PlannedFault) -> None:
        name = f"{fault.target}-{fault.replica}"
        replica = next(r for r in self.replicas if r.name == name)
        started = self.elapsed()
        if replica.name in self._killed:
            self._record("kill -9", replica.name, started, "already down: skipped")
            return
        self._killed.add(replica.name)
        await replica.kill()
        self._record("kill -9", replica.name, started, f"restarted after {fault.pause:.1f}s")
        await asyncio.sleep(fault.pause)
        await replica.start()
        self._killed.discard(replica.name)
        self._watchers.append(asyncio.create_task(self.watch(replica)))

    async def restart(self, fault: PlannedFault) -> None:
        started = self.elapsed()
        self.infra_touched = True
        await self.infra.run("down", fault.target)
        await asyncio.sleep(fault.pause)
        await self.infra.run("up", fault.target)
        self._record("restart", fault.target, started, f"down for {fault.pause:.1f}s + start")

    async def kill_leader(self, fault: PlannedFault) -> None:
        """kill -9 the node leading the most saga partitions; start it again."""
        started = self.elapsed()
        self.infra_touched = True
        node = await busiest_leader(client_options(self.settings))
        if not await kill_node(node):
            self._record("leader kill -9", f"node-{node}", started, "already down: skipped")
            return
        await asyncio.sleep(fault.pause)
        await self.infra.run("up", "kafka3")
        self._record("leader kill -9", f"node-{node}", started, f"down {fault.pause:.1f}s + start")

    async def stop_broker(self, fault: PlannedFault) -> None:
        """SIGSTOP a node (the busiest leader) for the fault's pause, then SIGCONT."""
        started = self.elapsed()
        self.infra_touched = True
        try:
            node = await busiest_leader(client_options(self.settings))
        except Exception:  # no leader known now: any node will do
            node = CLUSTER_NODES[0]
        hung = await hang_node(node, fault.pause)
        detail = f"hung for {fault.pause:.1f}s" if hung else "not running: skipped"
        self._record("broker SIGSTOP", f"node-{node}", started, detail)

    async def inject(self, plan: list[PlannedFault]) -> None:
        """Each fault at its time (or late, after a slow restart); kills run alongside."""
        kills: list[asyncio.Task[None]] = []
        for fault in plan:
            await asyncio.sleep(max(0.0, fault.at - self.elapsed()))
            if fault.kind == "kill":
                kills.append(asyncio.create_task(self.kill(fault)))
            elif fault.kind == "leader-kill":
                await self.kill_leader(fault)
            elif fault.kind == "broker-stop":
                await self.stop_broker(fault)
            else:
                await self.restart(fault)
        await asyncio.gather(*kills)

    async def start_services(self) -> None:
        for replica in self.replicas:
            await replica.start()
            self._watchers.append(asyncio.create_task(self.watch(replica)))
        await self._until_ready()

    async def _until_ready(self) -> None:
        try:
            await wait_ready(api_url(self.settings), self.config.ready_timeout)
        except NotReady as error:
            raise ChaosError(str(error)) from None

    async def stop_services(self) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        await stop_all(self.replicas)


async def _order_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def _until_quiet(engines: dict[str, AsyncEngine], timeout: float) -> float | None:
    """Seconds until every order is terminal and no saga is open; None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(Exception):  # a database may still be coming back
            if (await verify(engines))[0].ok:
                return time.monotonic() - start
        await asyncio.sleep(1.0)
    return None


async def run_chaos(config: ChaosConfig, settings: Settings, say: Say = print) -> ChaosReport:
    """Run the services under faults for ``config.duration`` seconds, then verify."""
    run = ChaosRun(config, settings, say)
    engines = {s.name: make_engine(s.database_url(settings)) for s in SERVICES}
    try:
        for service in SERVICES:
            try:
                await require_current(service, service.database_url(settings))
            except SchemaNotCurrent as error:
                raise ChaosError(f"{error} (and `ordersaga seed`)") from None
        if not config.reuse and (existing := await _order_count(engines["order"])):
            raise ChaosError(
                f"the order database already holds {existing} orders; verify would count "
                "them too (pass --reuse to run anyway)"
            )
        plan = plan_faults(
            random.Random(config.seed), config.duration, config.replicas, kafka=config.kafka
        )
        pick = sample_order
        if config.data == "chaos":
            await add_data(engines, CHAOS)
            pick = chaos_order
        say(f"starting {len(run.replicas)} replicas; logs in {config.log_dir}")
        await run.start_services()
        load = OrderLoad(
            api_url(settings),
            config.orders_per_second,
            random.Random(config.seed + 1),
            f"chaos-{config.seed}-{os.getpid()}-{int(time.time())}",
            pick,
            auth_setup.client_tokens(settings),
        )
        run.restart_clock()
        say(f"placing {config.orders_per_second:g} orders/s for {config.duration:g}s")
        # Placing goes on until every fault is in, so each one hits a loaded system
        # even when restarts take longer than planned.
        stop = asyncio.Event()
        placing = asyncio.create_task(load.run(stop, give_up=90))
        await asyncio.gather(run.inject(plan), asyncio.sleep(config.duration))
        stop.set()
        await placing
        run.report.placed, run.report.accepted = load.placed, len(load.accepted)
        # Whatever a fault left down comes back before the system is judged.
        await run.infra.run("up", *config.infra_parts)
        say("waiting until every order is terminal")
        run.report.time_to_quiet = await _until_quiet(engines, config.quiet_timeout)
        run.report.checks = await verify(engines)
        orders_now = (await snapshot(engines)).orders
        run.report.outcomes = Counter(o.status for o in orders_now)
        run.report.mix = Counter(outcome_class(o.status, o.reason) for o in orders_now)
        return run.report
    finally:
        await run.stop_services()
        if run.infra_touched:  # a failed or interrupted run must not leave a server down
            with contextlib.suppress(Exception):
                await run.infra.run("up", *config.infra_parts)
        for engine in engines.values():
            await engine.dispose()
