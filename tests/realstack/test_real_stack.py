"""The system as it is deployed: four services as separate processes over Kafka,
PostgreSQL and MariaDB, driven only through the HTTP API."""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.auth_support import operator_headers
from tests.realstack.stack import Stack

TERMINAL = {"ORDER_COMPLETED", "ORDER_CANCELLED"}


def place(
    http: httpx.Client, user: int, product: int, quantity: int, key: str | None = None
) -> dict[str, Any]:
    """POST an order; with a key, retried through connection failures (a replica may die)."""
    headers = {"Idempotency-Key": key} if key else {}
    body = {"userID": user, "productID": product, "quantity": quantity}
    for _ in range(50):
        try:
            response = http.post("/api/v1/orders", json=body, headers=headers)
        except httpx.TransportError:
            if key is None:
                raise
            time.sleep(0.1)
            continue
        assert response.status_code in (200, 201), response.text
        return dict(response.json())
    raise AssertionError("the order service did not take the order")


def wait_all(http: httpx.Client, ids: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    orders: dict[str, dict[str, Any]] = {}
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        for order_id in list(pending):
            try:
                order = http.get(f"/api/v1/orders/{order_id}").json()
            except httpx.TransportError:
                continue
            if order["status"] in TERMINAL:
                orders[order_id] = order
                pending.remove(order_id)
        if pending:
            time.sleep(0.2)
    assert not pending, f"{len(pending)} orders still open after {timeout} s"
    return orders


def assert_verified(stack: Stack) -> str:
    done = stack.cli("verify", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_three_outcomes(stack: Stack) -> None:
    stack.start_all()
    orders: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        # One after the other: the third is unaffordable only once the first was charged.
        completed = place(http, user=1, product=1, quantity=1)
        orders |= wait_all(http, [completed["orderID"]])
        no_stock = place(http, user=3, product=3, quantity=4)
        orders |= wait_all(http, [no_stock["orderID"]])
        no_money = place(http, user=1, product=3, quantity=2)  # 100 > 80 left
        orders |= wait_all(http, [no_money["orderID"]])
    assert orders[completed["orderID"]]["status"] == "ORDER_COMPLETED"
    assert orders[no_stock["orderID"]]["status"] == "ORDER_CANCELLED"
    assert "stock" in orders[no_stock["orderID"]]["reason"]
    assert orders[no_money["orderID"]]["status"] == "ORDER_CANCELLED"
    assert "funds" in orders[no_money["orderID"]]["reason"]
    report = assert_verified(stack)
    assert "on hand 12" in report  # 13 units, one sold, two given back after the rejection


def test_oversubscribed_stock_and_money(stack: Stack) -> None:
    stack.start_all()
    rng = random.Random(1)
    wanted = [(rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 2)) for _ in range(120)]
    client = httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers())
    with client as http, ThreadPoolExecutor(16) as pool:
        placed = list(pool.map(lambda o: place(http, *o), wanted))
        orders = wait_all(http, [p["orderID"] for p in placed])
    outcomes = Counter(o["status"] for o in orders.values())
    assert outcomes["ORDER_COMPLETED"] > 0 and outcomes["ORDER_CANCELLED"] > 0
    assert_verified(stack)


def test_two_replicas_each_one_of_each_killed_mid_run(stack: Stack) -> None:
    stack.start_all(replicas=2)
    rng = random.Random(2)
    ids: list[str] = []
    stop = threading.Event()

    def keep_ordering() -> None:
        with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
            n = 0
            while not stop.is_set() and n < 400:
                order = place(http, rng.randint(1, 3), rng.randint(1, 3), 1, key=f"k{n}")
                ids.append(order["orderID"])
                n += 1

    producer = threading.Thread(target=keep_ordering)
    producer.start()
    time.sleep(3)
    for service in ("order", "orchestrator", "stock", "payment"):
        stack.kill(f"{service}-1")
    time.sleep(4)
    stop.set()
    producer.join(timeout=60)
    assert len(ids) > 20, "orders should have been placed before and after the kills"
    with httpx.Client(base_url=stack.api, timeout=10, headers=operator_headers()) as http:
        orders = wait_all(http, ids, timeout=180)
    assert len(orders) == len(set(ids))
    stack.assert_alive()
    assert_verified(stack)
