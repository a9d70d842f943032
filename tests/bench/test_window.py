"""The measured window of a system run opens after the warm-up, and not before the
system has finished its first saga."""

import asyncio
import os

from ordersaga.tools.bench.load import LoadSpec
from ordersaga.tools.bench.run import _window

SPEC = LoadSpec(rate=10, warmup=0.2, duration=1)


def this_process() -> dict[str, list[int]]:
    return {"bench": [os.getpid()]}


async def test_the_window_waits_for_the_first_saga_past_the_warm_up() -> None:
    first_finished = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, first_finished.set)

    window = await _window(SPEC, this_process, first_finished=first_finished)

    assert window.start - window.load_start >= 1.0
    assert window.length >= SPEC.duration


async def test_a_saga_finished_in_the_warm_up_leaves_the_window_where_it_was() -> None:
    first_finished = asyncio.Event()
    first_finished.set()

    window = await _window(SPEC, this_process, first_finished=first_finished)

    assert SPEC.warmup <= window.start - window.load_start < 0.6
