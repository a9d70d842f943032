"""A rolling restart under load: SIGTERM to every replica in turn while orders stream in,
each restarted before the next. A clean stop loses nothing, so no saga waits for a
deadline: every one ends within seconds of the last restart, none cancelled by one."""

import asyncio
import random
import threading
import time

import httpx

from ordersaga.tools.bench.data import chaos_order
from tests.auth_support import operator_headers
from tests.realstack.quiet import add_chaos_data, wait_quiet
from tests.realstack.stack import Stack
from tests.realstack.test_real_stack import assert_verified, place, wait_all

# Long enough that a message lost in a stop would show as a deadline cancellation.
STEP_TIMEOUT = "20"
JOINED = "Successfully synced group"
SERVICES = ("order", "orchestrator", "stock", "payment")


def restart(stack: Stack, name: str) -> float:
    """SIGTERM ``name``, start it again and wait until it has rejoined its group; how long
    its stop took."""
    joined = (stack.logs / f"{name}.log").read_text(errors="replace").count(JOINED)
    took = stack.terminate(name)
    service, replica = name.rsplit("-", 1)
    stack.start(service, int(replica))
    stack.wait_logged(name, JOINED, joined + 1)
    return took


def test_rolling_sigterm_and_restart_of_every_replica_under_load(stack: Stack) -> None:
    asyncio.run(add_chaos_data(stack))
    stack.env |= {
        "ORDERSAGA_RESERVE_TIMEOUT": STEP_TIMEOUT,
        "ORDERSAGA_PAYMENT_TIMEOUT": STEP_TIMEOUT,
    }
    stack.start_all(replicas=2)
    for service in SERVICES:
        for replica in (1, 2):
            stack.wait_logged(f"{service}-{replica}", JOINED, 1)
    rng = random.Random(11)
    ids: list[str] = []
    placing = threading.Event()
    placing.set()

    def stream() -> None:
        with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
            n = 0
            while placing.is_set():
                body = chaos_order(rng)
                order = place(http, body["userID"], body["productID"], body["quantity"], f"r{n}")
                ids.append(order["orderID"])
                n += 1
                time.sleep(0.02)

    streaming = threading.Thread(target=stream)
    streaming.start()
    try:
        stops = {
            name: restart(stack, name)
            for replica in (1, 2)
            for name in (f"{service}-{replica}" for service in SERVICES)
        }
    finally:
        placing.clear()
        streaming.join(timeout=60)
    last_restart = time.monotonic()

    left = asyncio.run(wait_quiet(stack, timeout=10))
    assert not left, f"not quiet {time.monotonic() - last_restart:.1f} s after: {left}"
    assert max(stops.values()) < 25, stops
    assert len(ids) > 100, "orders should stream in during the whole restart"
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        orders = wait_all(http, ids, timeout=30)
    deadlines = [
        o["reason"] for o in orders.values() if "did not answer within" in (o["reason"] or "")
    ]
    assert not deadlines, deadlines
    stack.assert_alive()
    assert_verified(stack)
