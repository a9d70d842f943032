"""The product catalog as placing an order reads it: in memory, re-read when stale.

Every order needs its product's price, and the catalog hardly ever changes (it is
seeded, and edited by hand if at all), so reading it for each order was a database
round trip per POST for nothing. The rule: the whole catalog is read at once and used
for :data:`FRESH_FOR` seconds; a product not in it makes it be read again at once, so
a product added is orderable on its next request. A price changed in the database is
charged within :data:`FRESH_FOR` seconds.
"""

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.services.order import repository

FRESH_FOR = 5.0
"""Seconds a catalog read is used before it is read again."""


class CatalogCache:
    """Prices of the catalog on ``engine``, read whole and kept :data:`FRESH_FOR` seconds."""

    def __init__(
        self,
        engine: AsyncEngine,
        fresh_for: float = FRESH_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._fresh_for = fresh_for
        self._clock = clock
        self._prices: Mapping[int, Decimal] = {}
        self._read_at: float | None = None
        self._reads = 0
        self._reading = asyncio.Lock()

    async def prices(self, product_ids: set[int]) -> Mapping[int, Decimal]:
        """The catalog's prices, fresh, read again if any of ``product_ids`` is not in
        it; a product still missing is not in the catalog."""
        if self._stale() or not product_ids <= self._prices.keys():
            await self._read()
        return self._prices

    def _stale(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self._fresh_for

    async def _read(self) -> None:
        reads = self._reads
        async with self._reading:
            if self._reads != reads:
                return  # read by another caller while this one waited
            async with self._engine.connect() as conn:
                found = await repository.list_products(conn)
            self._prices = {p.id: p.price for p in found}
            self._read_at = self._clock()
            self._reads += 1
