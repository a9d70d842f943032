"""The order load, through the HTTP API: an open loop at a fixed rate, or a closed loop
as fast as the system takes orders.

Open loop: request *i* is due at ``start + i / rate`` whatever the answers do, many in
flight, so a slow system shows up as latency instead of a politely lower rate. Closed
loop (``--max``): ``concurrency`` workers each send the next order when the last one
was answered, and pause while ``max_in_flight`` placed orders are not yet finished, so
the measured rate is what the whole saga keeps up with, not only the API.
"""

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ordersaga.tools.bench.data import BENCH_PRODUCTS, BENCH_USERS
from ordersaga.tools.bench.http import HttpPool, ResponseError, post_request
from ordersaga.tools.client import Tokens

ORDERS_PATH = "/api/v1/orders"
OPEN_LOOP_CONNECTIONS = 256
"""Connections an open loop may open; a request finding them all busy counts as late."""


@dataclass(frozen=True)
class LoadSpec:
    """``rate`` orders per second (open loop), or None for as fast as taken (closed loop)."""

    rate: float | None
    concurrency: int = 32
    max_in_flight: int = 2000
    warmup: float = 5.0
    duration: float = 20.0
    seed: int = 0

    @property
    def mode(self) -> str:
        return "max" if self.rate is None else "rate"

    def describe(self) -> str:
        if self.rate is None:
            return f"max ({self.concurrency} workers, ≤{self.max_in_flight} in flight)"
        return f"{self.rate:g}/s open loop"


@dataclass
class LoadStats:
    sent: int = 0
    accepted: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    # (when the request was due, seconds until its answer), on the loop's clock
    answered: list[tuple[float, float]] = field(default_factory=list)


def due_count(rate: float, elapsed: float) -> int:
    """How many requests of an open loop at ``rate`` are due ``elapsed`` seconds after its
    start: the first at 0, then one every ``1 / rate`` seconds."""
    if elapsed < 0:
        return 0
    # The small epsilon keeps a request due exactly now from slipping to the next round.
    return math.floor(elapsed * rate + 1e-9) + 1


def due_at(rate: float, index: int) -> float:
    """Seconds after the start at which request ``index`` of an open loop is due."""
    return index / rate


class LoadGenerator:
    """Places orders for random bench users and products, quantity 1."""

    def __init__(self, api: str, spec: LoadSpec, tokens: Tokens | None = None) -> None:
        parts = urlsplit(api)
        self._tokens = tokens
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self.spec = spec
        connections = spec.concurrency if spec.rate is None else OPEN_LOOP_CONNECTIONS
        self.pool = HttpPool(self._host, self._port, connections)
        self.stats = LoadStats()
        self._rng = random.Random(spec.seed)
        self._finished = 0
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task[None]] = set()

    def note_finished(self, finished: int) -> None:
        """How many accepted orders have finished so far (the closed loop's brake)."""
        self._finished = finished
        if self.stats.accepted - finished < self.spec.max_in_flight:
            self._room.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Place orders until ``stop`` is set, then wait for the requests in flight."""
        try:
            if self.spec.rate is None:
                workers = [
                    asyncio.create_task(self._worker(stop)) for _ in range(self.spec.concurrency)
                ]
                await stop.wait()
                self._room.set()  # a worker waiting for room sees the stop
                await asyncio.gather(*workers)
            else:
                await self._open_loop(stop, self.spec.rate)
                await asyncio.gather(*self._tasks)
        finally:
            self.pool.close()

    async def _open_loop(self, stop: asyncio.Event, rate: float) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        index = 0
        while not stop.is_set():
            due = due_count(rate, loop.time() - start)
            while index < due:
                task = asyncio.create_task(self._post(start + due_at(rate, index)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                index += 1
            await asyncio.sleep(max(0.0, start + due_at(rate, index) - loop.time()))

    async def _worker(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if self.stats.accepted - self._finished >= self.spec.max_in_flight:
                self._room.clear()
                await self._room.wait()
                continue
            await self._post(loop.time())

    def _request(self) -> bytes:
        """A bench user's order for a bench product, with that user's token."""
        user = self._rng.choice(BENCH_USERS)
        product = self._rng.choice(BENCH_PRODUCTS)
        body = b'{"userID":%d,"productID":%d,"quantity":1}' % (user, product)
        token = self._tokens.for_user(user) if self._tokens else None
        return post_request(self._host, self._port, ORDERS_PATH, body, token)

    async def _post(self, due: float) -> None:
        request = self._request()
        self.stats.sent += 1
        try:
            status = await self.pool.send(request)
        except (OSError, ResponseError, ValueError):
            self.stats.errors += 1
            return
        if status == 201:
            self.stats.accepted += 1
            self.stats.answered.append((due, asyncio.get_running_loop().time() - due))
        else:
            self.stats.refused[status] += 1
