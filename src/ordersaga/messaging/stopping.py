"""Bounded waits for a clean stop: a stop must end even with the broker or the database
away, so every wait of it has a deadline, after which the work is cancelled, and past a
short while more, abandoned."""

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)

CANCEL_WAIT = 0.5
"""Seconds a cancelled task gets to unwind (roll back, close a socket) before it is left."""


class Deadline:
    """A point in time on the running loop's clock, and how much of it is left."""

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._start = loop.time()
        self._end = self._start + max(0.0, seconds)

    def remaining(self) -> float:
        return max(0.0, self._end - self._loop.time())

    def until(self, share: float) -> float:
        """Seconds from now until ``share`` (0 to 1) of the whole span has passed."""
        point = self._start + share * (self._end - self._start)
        return max(0.0, point - self._loop.time())


async def finish(task: "asyncio.Future[Any]", timeout: float, what: str) -> bool:
    """Wait up to ``timeout`` seconds for ``task`` to end by itself; past it, cancel it and
    give it :data:`CANCEL_WAIT` more to unwind. True if it ended by itself."""
    if not task.done():
        await asyncio.wait({task}, timeout=timeout)
    ended = task.done()
    if not ended:
        log.warning("%s did not end within %.1fs; cancelling it", what, timeout)
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_WAIT)
    if task.done():
        _retrieve(task)
    else:
        log.warning("%s did not unwind after cancellation; left behind", what)
        task.add_done_callback(_retrieve)
    return ended


async def bounded(work: Awaitable[Any], timeout: float, what: str) -> bool:
    """Run ``work`` for at most ``timeout`` seconds (see :func:`finish`)."""
    return await finish(asyncio.ensure_future(work), timeout, what)


def _retrieve(task: "asyncio.Future[Any]") -> None:
    """Collect the outcome of a finished task, so that it is never reported lost."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("stopping: %r", task.exception())
