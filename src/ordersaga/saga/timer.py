"""The deadline timer: a loop that acts on sagas whose deadline has passed.

Each scan is one transaction: take the due sagas (skipping those another timer or a
handler holds), apply their deadline transition (a step given up on, a compensation
sent again, or a saga parked), save them and write the messages to the outbox. Only
after it commits is the relay woken. A scan that fails is rolled back whole and done
again on the next tick.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.outbox import write_outbox
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaState
from ordersaga.saga.store import StaleSaga

log = logging.getLogger(__name__)


async def fire_due_deadlines(
    engine: AsyncEngine,
    runner: SagaRunner,
    outbox: Table,
    *,
    now: datetime | None = None,
    batch: int = 100,
) -> int:
    """Act on up to ``batch`` sagas due at ``now`` (default: the runner's clock).

    Returns how many sagas were acted on; their messages are in the outbox when it returns.
    """
    at = now or runner.clock()
    async with engine.begin() as conn:
        due = await runner.store.due(conn, at, batch)
        outgoing: list[OutgoingMessage] = []
        for state in due:
            cause = saga_trace(state)
            for topic, message in await runner.deadline(conn, state, at):
                outgoing.append(envelope(topic, message, cause))
        await write_outbox(conn, outbox, outgoing)
    return len(due)


async def run_deadlines(
    engine: AsyncEngine,
    wake_relay: Callable[[], None],
    *,
    runner: SagaRunner,
    outbox: Table,
    interval: float,
    batch: int = 100,
) -> None:
    """Scan for due deadlines every ``interval`` seconds until cancelled.

    A full batch is followed at once by another scan, so a backlog drains quickly;
    a failed scan is retried with backoff, so the service stays up while its
    database is away.
    """
    backoff = Backoff(first=interval, cap=max(interval, 5.0))
    while True:
        try:
            fired = await fire_due_deadlines(engine, runner, outbox, batch=batch)
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
        if fired:
            wake_relay()
        if fired < batch:
            await asyncio.sleep(interval)


def saga_trace(state: SagaState) -> Trace | None:
    """The saga's own trace, for what a timeout or an operator sends: no message caused it."""
    if not state.traceparent:
        return None
    return Trace(message_id="", saga_id=state.saga_id, traceparent=state.traceparent)
