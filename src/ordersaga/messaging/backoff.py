"""Capped exponential backoff with jitter, for retrying transient faults."""

import asyncio
import random


class Backoff:
    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self.attempts = 0

    def reset(self) -> None:
        self.attempts = 0

    def next_delay(self) -> float:
        delay: float = min(self._cap, self._first * 2**self.attempts)
        self.attempts += 1
        return delay * random.uniform(0.5, 1.0)

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay())
