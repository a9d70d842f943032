"""The deadline timer: a loop that acts on sagas whose deadline has passed.

Each scan is one unit of work: take the due sagas (skipping those another timer or a
handler holds), apply their deadline transition (a step given up on, a compensation
sent again, or a saga parked), save them and write the messages to the outbox. Only
after it commits is the relay woken. "Due" is judged by the database's clock (see
:mod:`~ordersaga.saga.clock`), so replicas whose clocks differ agree.

Each saga's transition runs in a savepoint of its own: one that raises is rolled back
alone, the error is recorded in its history, and the others go on. After
``max_failures`` failures in a row the saga is parked (:mod:`~ordersaga.saga.failures`),
so it stops being scanned. A fault of the surroundings (the database away, a lost race)
is nobody's failure: the scan is rolled back whole and done again on the next tick.

Each saga's deadline is acted on in a span (``saga deadline``), the child of the span
that started the saga, and the parent of what the deadline sends.
"""

import asyncio
import logging
from datetime import datetime

from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.envelope import Trace
from ordersaga.messaging.transient import is_transient
from ordersaga.messaging.unit_of_work import Transactions, UnitOfWork
from ordersaga.observability.logs import log_context, trace_id_of
from ordersaga.observability.tracing import Traced, Tracing
from ordersaga.saga.failures import FAILED
from ordersaga.saga.runner import Failed, SagaRunner
from ordersaga.saga.state import SagaState
from ordersaga.saga.store import StaleSaga

log = logging.getLogger(__name__)

MAX_FAILURES = 3
"""Failures in a row of one saga's deadline transition before the saga is parked."""


async def fire_due_deadlines(
    transactions: Transactions,
    runner: SagaRunner,
    *,
    now: datetime | None = None,
    batch: int = 100,
    max_failures: int = MAX_FAILURES,
) -> int:
    """Act on up to ``batch`` sagas due at ``now`` (default: the runner's clock, read in
    the scan's transaction).

    Returns how many sagas were acted on, a failed one included; the messages of those
    that succeeded are in the outbox when it returns.
    """
    spans: list[Traced] = []
    try:
        async with transactions.begin() as work:
            conn = work.conn
            await _begin_on_sqlite(conn)
            at = now or await runner.clock.now(conn)
            # Sagas of versions not registered here are left to replicas that have them.
            due = await runner.store.due(conn, at, batch, versions=runner.definitions.versions)
            for state in due:
                spans.append(_deadline_span(transactions.tracing, state))
                traceparent = spans[-1].traceparent
                with log_context(saga_id=state.saga_id, trace_id=trace_id_of(traceparent)):
                    await _fire(work, runner, state, at, max_failures, spans[-1])
    except BaseException as error:
        for span in spans:
            span.end(error)
        raise
    for span in spans:
        span.end()
    return len(due)


def _deadline_span(tracing: Tracing, state: SagaState) -> Traced:
    return tracing.start(
        "saga deadline",
        SpanKind.INTERNAL,
        state.traceparent,
        lambda: {
            "ordersaga.saga_id": state.saga_id,
            "ordersaga.saga.status": state.status.value,
            "ordersaga.saga.step": state.step,
            "ordersaga.saga.attempts": state.attempts,
        },
    )


async def _fire(
    work: UnitOfWork,
    runner: SagaRunner,
    state: SagaState,
    at: datetime,
    max_failures: int,
    span: Traced,
) -> None:
    conn = work.conn
    try:
        async with conn.begin_nested():
            transition = await runner.deadline(conn, state, at)
        # Only what a savepoint that was released sends: a rolled-back one sends nothing.
        cause = Trace(message_id="", saga_id=state.saga_id, traceparent=span.traceparent)
        for topic, message, message_id in transition.outgoing() if transition else ():
            work.send(topic, message, cause, message_id=message_id)
    except StaleSaga as stale:
        # Only without row locks (SQLite): a handler saved it first; the next scan sees it.
        log.info("saga %s: deadline raced a handler (%s); next scan", state.saga_id, stale)
    except Exception as error:
        if is_transient(error):
            raise
        log.exception("saga %s: deadline transition failed", state.saga_id)
        await _record_failure(conn, runner, state, error, at, max_failures)


async def _record_failure(
    conn: AsyncConnection,
    runner: SagaRunner,
    state: SagaState,
    error: BaseException,
    at: datetime,
    max_failures: int,
) -> None:
    before = await runner.store.outcomes_in_a_row(conn, state.saga_id, FAILED, max_failures)
    await runner.apply(conn, [Failed(state.saga_id, error, before + 1, max_failures)], at)


async def _begin_on_sqlite(conn: AsyncConnection) -> None:
    # pysqlite opens a transaction only before a write, and a savepoint taken outside
    # one is a transaction of its own, committed by its release: open the scan's
    # transaction first, so that its savepoints nest in it and it stays one.
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN")


async def run_deadlines(
    transactions: Transactions,
    *,
    runner: SagaRunner,
    interval: float,
    batch: int = 100,
    max_failures: int = MAX_FAILURES,
) -> None:
    """Scan for due deadlines every ``interval`` seconds until cancelled.

    A full batch is followed at once by another scan, so a backlog drains quickly;
    a failed scan is retried with backoff, so the service stays up while its
    database is away.
    """
    backoff = Backoff(first=interval, cap=max(interval, 5.0))
    while True:
        try:
            fired = await fire_due_deadlines(
                transactions, runner, batch=batch, max_failures=max_failures
            )
        except asyncio.CancelledError:
            raise
        except StaleSaga as stale:
            # A handler saved the saga first; the next scan sees its new state.
            log.info("deadline scan raced a handler (%s); scanning again", stale)
            await backoff.sleep()
            continue
        except Exception:
            log.exception("deadline scan failed; retrying")
            await backoff.sleep()
            continue
        backoff.reset()
        if fired < batch:
            await asyncio.sleep(interval)


def saga_trace(state: SagaState) -> Trace | None:
    """The saga's own trace, for what a timeout or an operator sends: no message caused it."""
    if not state.traceparent:
        return None
    return Trace(message_id="", saga_id=state.saga_id, traceparent=state.traceparent)
