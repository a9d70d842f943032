"""Bursts of concurrent POSTs over keep-alive connections: every request gets an answer
(an order, or a 503 with Retry-After), never a connection closed under it."""

import asyncio
import random
from collections import Counter

import httpx

from ordersaga.tools.bench.data import chaos_order
from tests.auth_support import operator_headers
from tests.realstack.quiet import add_chaos_data, wait_quiet
from tests.realstack.stack import Stack
from tests.realstack.test_real_stack import assert_verified

BURSTS = 5
CONCURRENT = 300
# Pauses between bursts around httpx's keep-alive expiry (5 s): a server that closes idle
# connections after as long races the client that reuses one just then.
PAUSES = (0.5, 4.9, 5.0, 5.1)


class Tally:
    """What the requests got: answers by status, and failures without any answer."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.unanswered: list[str] = []


async def place(http: httpx.AsyncClient, body: dict[str, int], key: str, tally: Tally) -> str:
    """POST until the order is placed; every attempt without an answer is tallied."""
    for _ in range(50):
        try:
            response = await http.post(
                "/api/v1/orders", json=body, headers={"Idempotency-Key": key}
            )
        except httpx.TransportError as error:
            tally.unanswered.append(f"{key}: {error!r}")
            await asyncio.sleep(0.1)
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code == 503:
            assert "Retry-After" in response.headers, response.text
            await asyncio.sleep(float(response.headers["Retry-After"]))
            continue
        assert response.status_code in (200, 201), response.text
        return str(response.json()["orderID"])
    raise AssertionError(f"order {key} was never taken")


async def bursts(api: str, tally: Tally) -> list[str]:
    rng = random.Random(5)
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    ids: list[str] = []
    async with httpx.AsyncClient(
        base_url=api, limits=limits, timeout=30, headers=operator_headers()
    ) as http:
        for burst in range(BURSTS):
            if burst:
                await asyncio.sleep(PAUSES[burst - 1])
            orders = [(chaos_order(rng), f"b{burst}-{i}") for i in range(CONCURRENT)]
            ids += await asyncio.gather(*(place(http, body, key, tally) for body, key in orders))
    return ids


def test_every_request_of_bursts_over_keep_alive_connections_gets_an_answer(
    stack: Stack,
) -> None:
    asyncio.run(add_chaos_data(stack))
    stack.start_all()
    tally = Tally()
    ids = asyncio.run(bursts(stack.api, tally))

    assert not tally.unanswered, f"{len(tally.unanswered)} without an answer: {tally.unanswered}"
    assert len(set(ids)) == BURSTS * CONCURRENT, tally.statuses
    left = asyncio.run(wait_quiet(stack, timeout=90))
    assert not left, f"not quiet: {left}"
    stack.assert_alive()
    assert_verified(stack)
