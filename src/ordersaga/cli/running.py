"""Running a command's coroutine."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T | None:
    """Run ``main`` on uvloop; Ctrl-C ends it quietly (the services stop cleanly on their
    own). uvloop's transports and scheduling in C take a good share off the CPU every
    message and request costs."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    except KeyboardInterrupt:
        return None
