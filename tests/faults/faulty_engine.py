"""Seeded database faults: an engine that stands between a service and its database.

:class:`FaultyEngine` is an ``AsyncEngine`` on the service's own pool, so everything the
service does with its database passes through it: its consumer, its outbox relay, its
background loops (the orchestrator's deadline timer) and the order API. While the seed's
fault window is open it

- refuses checkouts, as the pool does when none comes back in time
  (``sqlalchemy.exc.TimeoutError``) or as a server that refuses new connections does
  (PostgreSQL 53300, 57P03, 55000; MySQL 1040);
- fails statements with lock, statement and resource timeouts, serialization failures
  and deadlocks (PostgreSQL 55P03, 57014, 53200, 40001, 40P01; MySQL 1205, 1213;
  SQLite ``database is locked``);
- drops the connection in the middle of a transaction (PostgreSQL 25P03, 57P01, a closed
  connection; MySQL 2006, 2013): the transaction is lost and the pool opens a new one;
- lets a commit go through and then loses its answer (the caller sees a connection
  error for work that is durable).

Statements on the driver route (:mod:`ordersaga.db.driver`: the hot statements, run on
asyncpg or sqlite3 under SQLAlchemy's transaction) do not pass through the connection's
``execute``; :func:`reach_the_driver_route` makes the route's own methods ask the same
schedule first, so the statement and drop faults reach them too.

In some seeds one service's pool also runs dry for a while (an *outage*): every checkout
times out, for up to a bit over a second. Every decision comes from the seed's one
``random.Random``; after the window (and the outage) the database works again, so every
seed can finish. What was injected is counted in the :class:`FaultLog` as ``db-<kind>``,
and where (``<service> <consumer|relay|timer|api>``) in its ``places``.
"""

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from ordersaga.db.driver import Postgres, Sqlite
from tests.driver_errors import CATALOG, DbFault, Dialects, Phase, of_phase
from tests.faults.injector import FaultLog

OUTAGE = "outage"

DB_FAULT_KINDS = frozenset({f"db-{fault.kind}" for fault in CATALOG} | {f"db-{OUTAGE}"})
"""Every kind of database fault the seeds can inject, as counted in the log."""


@dataclass(frozen=True)
class DbFaultPlan:
    """When and how often the databases fail, drawn from the seed (times in seconds
    since the system started)."""

    begins: float
    lasts: float
    checkout: float
    statement: float
    drop: float
    commit_lost: float
    outage: str | None
    outage_begins: float
    outage_lasts: float

    @classmethod
    def draw(cls, rng: random.Random, services: Sequence[str]) -> "DbFaultPlan":
        """A window of faults; each kind is switched off in about a quarter of the seeds,
        and about a fifth of the seeds have an outage of one service's pool."""

        def rate(high: float) -> float:
            return 0.0 if rng.random() < 0.25 else rng.uniform(0.0, high)

        return cls(
            begins=rng.uniform(0.0, 0.3),
            lasts=rng.uniform(0.1, 0.5),
            checkout=rate(0.25),
            statement=rate(0.08),
            drop=rate(0.04),
            commit_lost=rate(0.12),
            outage=rng.choice(tuple(services)) if rng.random() < 0.2 else None,
            outage_begins=rng.uniform(0.0, 0.5),
            outage_lasts=rng.uniform(0.3, 1.0),
        )


def _role() -> str:
    """Which part of a service is asking, from the name of its task (see
    :class:`ordersaga.runtime.service.ServiceReplica` and its endpoint); the API's
    requests run in the test's own task."""
    task = asyncio.current_task()
    name = task.get_name() if task is not None else ""
    for suffix, role in (("-consumer", "consumer"), ("-relay", "relay"), ("-loop", "timer")):
        if name.endswith(suffix):
            return role
    return "api"


def _statement_text(conn: AsyncConnection, statement: object) -> str:
    if isinstance(statement, str):
        return statement
    try:
        compile_ = statement.compile
        return str(compile_(dialect=conn.sync_engine.dialect))
    except Exception:  # only for the error's message
        return type(statement).__name__


_ROUTE_METHODS = ("fetch", "value", "fetch_rows", "execute", "execute_many")
_in_route: ContextVar[bool] = ContextVar("in_route", default=False)


def _faulty_route(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def asked_first(route: Postgres | Sqlite, sql: str, *args: Any) -> Any:
        conn = route._conn
        if _in_route.get() or not isinstance(conn, FaultyConnection):
            return await method(route, sql, *args)
        faults, service = conn._faults()
        try:
            await faults.at_statement(conn, service, sql)
        except Exception:
            faults.log.on_driver_route[f"{service} {_role()}"] += 1
            raise
        inside = _in_route.set(True)  # a method calling another is one statement
        try:
            return await method(route, sql, *args)
        finally:
            _in_route.reset(inside)

    asked_first.faulty = True  # type: ignore[attr-defined]
    return asked_first


def reach_the_driver_route() -> None:
    """Make the driver route's statements ask the faults of their connection first, as
    :meth:`FaultyConnection.execute` does (once per process; harmless elsewhere: only a
    :class:`FaultyConnection`'s route is affected)."""
    for route in (Postgres, Sqlite):
        for name in _ROUTE_METHODS:
            method = getattr(route, name)
            if not getattr(method, "faulty", False):
                setattr(route, name, _faulty_route(method))


class DatabaseFaults:
    """The schedule shared by the four services' engines; create it in the event loop."""

    def __init__(self, rng: random.Random, plan: DbFaultPlan, log: FaultLog) -> None:
        reach_the_driver_route()
        self.rng = rng
        self.plan = plan
        self.log = log
        self._dialects = Dialects()
        self._started = asyncio.get_running_loop().time()

    def wrap(self, service: str, engine: AsyncEngine) -> AsyncEngine:
        """``engine`` as ``service`` sees it (an ``EmbeddedSystem`` engine wrapper)."""
        return FaultyEngine(engine, service, self)

    # -- when -------------------------------------------------------------------------------
    def _since_start(self) -> float:
        return asyncio.get_running_loop().time() - self._started

    def _in_window(self) -> bool:
        plan = self.plan
        return plan.begins <= self._since_start() < plan.begins + plan.lasts

    def _in_outage(self, service: str) -> bool:
        plan = self.plan
        since = self._since_start()
        return plan.outage == service and (
            plan.outage_begins <= since < plan.outage_begins + plan.outage_lasts
        )

    def _strikes(self, rate: float) -> bool:
        return rate > 0 and self._in_window() and self.rng.random() < rate

    # -- what -------------------------------------------------------------------------------
    def _error(self, kind: str, fault: DbFault, service: str, statement: str | None) -> Exception:
        error = fault.build(self._dialects, statement)
        where = f"{service} {_role()}"
        self.log.add(f"db-{kind}", f"{where}: {type(error).__name__}: {error}".split("\n")[0])
        self.log.places[where] += 1
        return error

    async def at_checkout(self, service: str) -> None:
        if self._in_outage(service):
            pool_timeout = of_phase(Phase.CHECKOUT)[0]
            error = self._error(OUTAGE, pool_timeout, service, None)
            await asyncio.sleep(self.rng.uniform(0.0, 0.02))  # the pool waits before it gives up
            raise error
        if self._strikes(self.plan.checkout):
            fault = self.rng.choice(of_phase(Phase.CHECKOUT))
            error = self._error(fault.kind, fault, service, None)
            if fault.kind == "pool-timeout":
                await asyncio.sleep(self.rng.uniform(0.0, 0.02))
            raise error

    async def at_statement(self, conn: AsyncConnection, service: str, statement: object) -> None:
        phase = (
            Phase.DROP
            if self._strikes(self.plan.drop)
            else Phase.STATEMENT
            if self._strikes(self.plan.statement)
            else None
        )
        if phase is None:
            return
        fault = self.rng.choice(of_phase(phase))
        error = self._error(fault.kind, fault, service, _statement_text(conn, statement))
        if fault.drops_connection:
            await conn.invalidate(error)  # the transaction is gone with the connection
        raise error

    async def after_commit(self, conn: AsyncConnection, service: str) -> None:
        if not self._strikes(self.plan.commit_lost):
            return
        fault = self.rng.choice(of_phase(Phase.COMMIT))
        error = self._error(fault.kind, fault, service, "COMMIT")
        await conn.invalidate(error)
        raise error


class FaultyTransaction(AsyncTransaction):
    """A transaction whose commit may go through with its answer lost."""

    def __init__(self, connection: "FaultyConnection") -> None:
        super().__init__(connection)
        self._faulty = connection

    async def commit(self) -> None:
        await super().commit()
        await self._faulty.after_commit()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await super().__aexit__(type_, value, traceback)
        if type_ is None:
            await self._faulty.after_commit()


class FaultyConnection(AsyncConnection):
    """A connection of a :class:`FaultyEngine`: checkout, statements and commits may fail."""

    def _faults(self) -> tuple["DatabaseFaults", str]:
        engine = self.engine
        assert isinstance(engine, FaultyEngine)
        return engine.faults, engine.service

    async def start(self, is_ctxmanager: bool = False) -> AsyncConnection:
        faults, service = self._faults()
        await faults.at_checkout(service)
        return await super().start(is_ctxmanager)

    def begin(self) -> AsyncTransaction:
        assert self.sync_connection is not None
        return FaultyTransaction(self)

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        faults, service = self._faults()
        await faults.at_statement(self, service, statement)
        return await super().execute(statement, *args, **kwargs)

    async def exec_driver_sql(self, statement: str, *args: Any, **kwargs: Any) -> Any:
        faults, service = self._faults()
        await faults.at_statement(self, service, statement)
        return await super().exec_driver_sql(statement, *args, **kwargs)

    async def commit(self) -> None:
        await super().commit()
        await self.after_commit()

    async def after_commit(self) -> None:
        faults, service = self._faults()
        await faults.after_commit(self, service)


class FaultyEngine(AsyncEngine):
    """``engine``'s pool, seen through seeded faults for ``service``."""

    _connection_cls = FaultyConnection

    def __init__(self, engine: AsyncEngine, service: str, faults: DatabaseFaults) -> None:
        super().__init__(engine.sync_engine)
        self.service = service
        self.faults = faults
