"""Running the whole embedded system in a test, driven through its HTTP API."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from ordersaga.config import Settings
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.tools.client import OrderClient
from ordersaga.tools.verify import Check, verify


@asynccontextmanager
async def api_of(system: EmbeddedSystem) -> AsyncIterator[OrderClient]:
    transport = httpx.ASGITransport(app=system.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordersaga") as http:
        yield OrderClient(http, system.tokens)


@asynccontextmanager
async def embedded(
    data_dir: Path, broker: InProcessBroker | None = None, **options: Any
) -> AsyncIterator[tuple[EmbeddedSystem, OrderClient]]:
    system = EmbeddedSystem(data_dir, Settings(), broker=broker, **options)
    async with system, api_of(system) as client:
        yield system, client


def failed(checks: Sequence[Check]) -> list[str]:
    return [f"{c.number}. {c.name}: {c.figures}" for c in checks if not c.ok]


async def assert_invariants(system: EmbeddedSystem) -> list[Check]:
    """Wait for quiet, then every invariant of the design must hold."""
    assert await system.wait_until_quiet(timeout=60), "sagas still open after 60 s"
    checks = await verify(system.engines)
    assert not failed(checks), failed(checks)
    return checks
