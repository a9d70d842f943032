"""Small helpers shared by the tests: waiting for a condition, running one handler."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, new_traceparent
from ordersaga.messaging.handler import BatchHandler, BatchItem, HandlerContext
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.services.order import tables as order_tables

POLL_INTERVAL = 0.01
"""How often a condition is checked again; short, so a wait ends soon after it holds."""


async def until(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Wait until ``condition()`` holds; fail the test if ``timeout`` seconds pass first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(POLL_INTERVAL)


async def until_async(
    condition: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition"
) -> None:
    """:func:`until` for a condition that must await (a query, a poll of a broker)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(POLL_INTERVAL)


def until_sync(
    condition: Callable[[], bool],
    timeout: float = 5.0,
    what: str = "condition",
    interval: float = POLL_INTERVAL,
) -> None:
    """:func:`until` outside an event loop (child processes, HTTP servers of other processes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(interval)


async def run_handler(
    engine: AsyncEngine, handler: BatchHandler, message: WireMessage, topic: str = "test-topic"
) -> WireMessage:
    """Run ``handler`` for ``message``, a batch of one, in its own transaction, as the
    consumer loop does; its one reply."""
    trace = Trace("m1", str(message.orderID), new_traceparent())
    async with engine.begin() as conn:
        ctx = HandlerContext(conn, trace)
        await handler(conn, [BatchItem(topic, message, ctx)])
    [reply] = ctx.outgoing
    assert reply.key == str(message.orderID)
    return decode(reply.topic, reply.value)


def order_units(engine: AsyncEngine, wake: Callable[[], None] = lambda: None) -> Transactions:
    """The order service's units of work on ``engine``, waking ``wake`` after each commit
    that sent something."""
    return Transactions(engine, order_tables.outbox, order_tables.inbox, wake)
