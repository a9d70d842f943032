"""A saga with a retriable step after the pivot, end to end in the embedded system.

Place-order version 2 ships the order after payment (test-only topics, served by a
fake participant, tests/shipping.py); the place-order wire contract is untouched. The
saga completes only once shipping answered, however late or after however many sends;
a participant that never answers parks the saga, and an operator's retry resumes it.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.messaging.memory import InProcessBroker
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.saga.runner import SagaRunner
from ordersaga.saga.state import SagaStatus
from ordersaga.services.orchestrator import wiring
from ordersaga.services.orchestrator.operations import SagaDetail, SagaOperations
from ordersaga.tools.client import OrderClient
from tests.shipping import (
    ORDER_SHIPPED,
    SHIP_ORDER,
    SHIPPING_TOPICS,
    Shipping,
    running,
    shipping_runner,
)
from tests.system.conftest import api_of, assert_invariants

SETTINGS = Settings(max_compensation_attempts=3, timer_interval=0.05)


@asynccontextmanager
async def shipping_system(
    data_dir: Path, shipping: Callable[[InProcessBroker], Shipping], runner: SagaRunner
) -> AsyncIterator[tuple[EmbeddedSystem, OrderClient, Shipping, SagaOperations]]:
    broker = InProcessBroker(partitions=SETTINGS.partitions)
    await broker.create_topics(SHIPPING_TOPICS, SETTINGS.partitions)
    specs = {"orchestrator": wiring.spec(SETTINGS, runner)}
    system = EmbeddedSystem(data_dir, SETTINGS, broker=broker, specs=specs)
    try:
        async with system, api_of(system) as api, running(shipping(broker)) as participant:
            operations = SagaOperations(system.endpoints["orchestrator"].transactions, runner)
            yield system, api, participant, operations
    finally:
        await broker.close()


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


async def closed(ops: SagaOperations, saga_id: str) -> bool:
    return (await ops.show(saga_id)).saga.status is SagaStatus.COMPLETED


def completed_by(detail: SagaDetail) -> str:
    """The event that decided the saga's completion."""
    return next(r.entry.event for r in detail.history if r.entry.outcome == "completed")


async def test_the_saga_completes_only_after_shipping_answered(tmp_path: Path) -> None:
    runner = shipping_runner(SETTINGS, ship_timeout=5.0)
    async with shipping_system(tmp_path, Shipping, runner) as (system, api, shipping, ops):
        placed = await api.place(user=1, product=1, quantity=1)
        order = await api.wait(placed["orderID"])
        assert order["status"] == "ORDER_COMPLETED"
        detail = await ops.show(placed["orderID"])
        assert shipping.answered[placed["orderID"]] == 1
        await assert_invariants(system)
    assert detail.saga.definition == "place-order v2"
    assert completed_by(detail) == ORDER_SHIPPED
    assert [r.entry.event for r in detail.history][:4] == [
        "start",
        topics.PRODUCT_RESERVED,
        topics.PAYMENT_PROCESSED,
        ORDER_SHIPPED,
    ]


async def test_a_late_answer_and_an_answer_only_after_resends_still_complete(
    tmp_path: Path,
) -> None:
    late = shipping_runner(SETTINGS, ship_timeout=0.1)

    def slow_and_reluctant(broker: InProcessBroker) -> Shipping:
        # Answers from the third send on, each answer a little after the next deadline.
        return Shipping(broker, answer_from=3, delay=0.15)

    async with shipping_system(tmp_path, slow_and_reluctant, late) as (system, api, shipping, ops):
        placed = [await api.place(user=u, product=1, quantity=1) for u in (1, 2)]
        orders = [await api.wait(p["orderID"]) for p in placed]
        assert [o["status"] for o in orders] == ["ORDER_COMPLETED"] * 2
        # The order is completed before its saga closes (on order-status-applied).
        for p in placed:
            await until(lambda: closed(ops, p["orderID"]))  # noqa: B023
        details = [await ops.show(p["orderID"]) for p in placed]
        await assert_invariants(system)
    for detail in details:
        outcomes = [r.entry.outcome for r in detail.history]
        assert outcomes.count("retried") >= 2, outcomes
        assert "compensating" not in outcomes and "timed-out" not in outcomes
        assert completed_by(detail) == ORDER_SHIPPED
        assert detail.saga.status is SagaStatus.COMPLETED
    assert all(shipping.received[p["orderID"]] >= 3 for p in placed)


async def test_a_silent_participant_parks_the_saga_and_a_retry_resumes_it(tmp_path: Path) -> None:
    runner = shipping_runner(SETTINGS, ship_timeout=0.1)

    def silent(broker: InProcessBroker) -> Shipping:
        return Shipping(broker, answer_from=0)

    async with shipping_system(tmp_path, silent, runner) as (system, api, shipping, ops):
        placed = await api.place(user=1, product=2, quantity=1)
        order_id = placed["orderID"]

        async def parked() -> bool:
            found = await ops.find(status=SagaStatus.PARKED)
            return order_id in {saga.saga_id for saga in found}

        await until(parked)
        detail = await ops.show(order_id)
        assert detail.saga.step_name == "ship"
        assert detail.saga.reason == f"{SHIP_ORDER} not acknowledged after 3 attempts"
        assert (await api.get(order_id))["status"] == "ORDER_CREATED"
        assert shipping.received[order_id] == 3

        shipping.answer_from = 1  # the participant is mended; the operator retries
        resumed = await ops.retry(order_id, actor="on-call", reason="shipping is mended")
        assert resumed.saga.status is SagaStatus.RUNNING
        assert resumed.audit.action == "retry" and resumed.audit.actor == "on-call"
        order = await api.wait(order_id)
        assert order["status"] == "ORDER_COMPLETED"
        await assert_invariants(system)
    assert shipping.received[order_id] == 4
