"""The orchestrator's, stock's and payment's databases refuse connections for seconds
while orders stream in: every order ends, no valid message is dead-lettered."""

import asyncio
import random
import threading
import time

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ordersaga.db.engine import make_engine
from ordersaga.tools.bench.data import CHAOS, add_data, chaos_order
from tests.auth_support import operator_headers
from tests.realstack.stack import Stack
from tests.realstack.test_real_stack import assert_verified, place, wait_all

REFUSING = ("orchestrator", "stock", "payment")
OUTAGE_SECONDS = 8.0


async def add_chaos_data(stack: Stack) -> None:
    engines = {
        name: make_engine(stack.urls[name])
        for name in ("order", "stock", "payment")
    }
    try:
        await add_data(engines, CHAOS)
    finally:
        for engine in engines.values():
            await engine.dispose()


async def allow_connections(stack: Stack, allowed: bool) -> None:
    """Let the services' PostgreSQL databases take connections, or refuse them and end
    the sessions they have (as ``ALTER DATABASE ... ALLOW_CONNECTIONS false`` does to a
    database under maintenance)."""
    url = make_url(stack.urls["orchestrator"])
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for service in REFUSING:
                name = make_url(stack.urls[service]).database
                await conn.exec_driver_sql(
                    f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}"
                )
                if not allowed:
                    await conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    )
    finally:
        await admin.dispose()


def test_orders_finish_when_the_databases_refuse_connections_for_seconds(stack: Stack) -> None:
    asyncio.run(add_chaos_data(stack))
    stack.start_all()
    rng = random.Random(17)
    ids: list[str] = []

    def stream(http: httpx.Client, count: int, rate: float) -> None:
        start = time.monotonic()
        for i in range(count):
            body = chaos_order(rng)
            order = place(http, body["userID"], body["productID"], body["quantity"], f"o-{i}")
            ids.append(order["orderID"])
            time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))

    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        placing = threading.Thread(target=stream, args=(http, 240, 30.0))
        placing.start()
        time.sleep(1.5)
        asyncio.run(allow_connections(stack, False))
        try:
            time.sleep(OUTAGE_SECONDS)
        finally:
            asyncio.run(allow_connections(stack, True))
        placing.join(timeout=60)
        orders = wait_all(http, ids, timeout=120)

    stack.assert_alive()
    assert len(orders) == 240
    statuses = [o["status"] for o in orders.values()]
    assert statuses.count("ORDER_COMPLETED") > 120, statuses
    dead = stack.cli("dlq", "list")
    assert "No dead letters" in dead.stdout, dead.stdout
    assert_verified(stack)
