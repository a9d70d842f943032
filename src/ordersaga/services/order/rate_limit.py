"""Per-client rate limiting of order placement: a token bucket per client, per replica.

Each client (a token's subject) may place ``burst`` orders at once and ``rate`` a
second on average; past that it is told how many seconds to wait. The buckets live in
the replica's memory: N replicas allow a client up to N times the rate, which is what
a limit against one client's runaway loop needs, without a shared store in the path.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 10_000
"""Buckets kept before full ones (clients idle long enough) are forgotten."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``take(client)`` is ``0`` when the client may go ahead, else the whole seconds to
    wait before it may try again. A ``rate`` of 0 lets everything through."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> int:
        if self.rate <= 0:
            return 0
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_full(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes nothing."""
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst:
                del self._buckets[client]
