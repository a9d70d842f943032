"""Small helpers shared by the tests: waiting for a condition, running one handler."""

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, new_traceparent
from ordersaga.messaging.handler import Handler, HandlerContext


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds; fail the test if ``timeout`` seconds pass first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"condition not reached within {timeout} s"
        await asyncio.sleep(0.01)


async def run_handler(engine: AsyncEngine, handler: Handler, message: WireMessage) -> WireMessage:
    """Run ``handler`` in its own transaction, as the consumer loop does; its one reply."""
    trace = Trace("m1", str(message.orderID), new_traceparent(message.orderID))
    async with engine.begin() as conn:
        ctx = HandlerContext(conn, trace)
        await handler(ctx, message)
    [reply] = ctx.outgoing
    assert reply.key == str(message.orderID)
    return decode(reply.topic, reply.value)
