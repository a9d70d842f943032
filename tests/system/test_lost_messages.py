"""Every saga finishes even when a valid message is lost to the DLQ by mistake.

A broker that puts the first messages of a topic on its dead-letter topic instead of
delivering them stands for an operator's error or a consumer that wrongly dead-letters.
No operator steps in: the order service reconciles its stale orders and the
orchestrator sends order-updated until the order service acknowledges it.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.messaging.memory import InProcessBroker, InProcessProducer
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.tools.client import OrderClient
from tests.support import until
from tests.system.conftest import api_of, assert_invariants


class LosingProducer(InProcessProducer):
    def __init__(self, broker: "LosingBroker") -> None:
        super().__init__(broker)
        self._losing = broker

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        await super().send_batch([self._losing.divert(m) for m in messages])


class LosingBroker(InProcessBroker):
    """Sends the first ``count`` messages on ``topic`` to its dead-letter topic."""

    def __init__(self, topic: str, count: int = 1) -> None:
        super().__init__()
        self.topic = topic
        self.left = count

    def producer(self) -> InProcessProducer:
        return LosingProducer(self)

    def divert(self, message: OutgoingMessage) -> OutgoingMessage:
        if message.topic != self.topic or self.left <= 0:
            return message
        self.left -= 1
        return replace(message, topic=topics.dead_letter(message.topic))


@asynccontextmanager
async def losing(
    data_dir: Path, broker: LosingBroker, settings: Settings
) -> AsyncIterator[tuple[EmbeddedSystem, OrderClient]]:
    system = EmbeddedSystem(data_dir, settings, broker=broker)
    try:
        async with system, api_of(system) as client:
            yield system, client
    finally:
        await broker.close()


def lost_updates(broker: InProcessBroker) -> list[str]:
    """The statuses of the order-updated messages put on the dead-letter topic."""
    lost = broker.records(topics.dead_letter(topics.ORDER_UPDATED))
    return [str(decode(topics.ORDER_UPDATED, r.value).status) for r in lost]  # type: ignore[attr-defined]


async def test_a_lost_order_created_is_published_again_and_the_order_completes(
    tmp_path: Path,
) -> None:
    broker = LosingBroker(topics.ORDER_CREATED)
    settings = Settings(reconcile_after=0.5)
    async with losing(tmp_path, broker, settings) as (system, api):
        placed = await api.place(user=1, product=1, quantity=1)
        order = await api.wait(placed["orderID"], timeout=20)

        assert order["status"] == "ORDER_COMPLETED"
        assert len(broker.records(topics.dead_letter(topics.ORDER_CREATED))) == 1
        created = broker.records(topics.ORDER_CREATED)
        assert {r.key for r in created} == {placed["orderID"]}
        await assert_invariants(system)


async def test_a_lost_order_updated_is_sent_again_and_acknowledged(tmp_path: Path) -> None:
    broker = LosingBroker(topics.ORDER_UPDATED)
    # Reconciliation out of the way: the saga's own deadline re-sends the update.
    settings = Settings(compensation_timeout=0.3, reconcile_after=3600)
    async with losing(tmp_path, broker, settings) as (system, api):
        placed = await api.place(user=3, product=3, quantity=4)  # 3 on hand: cancelled
        order = await api.wait(placed["orderID"], timeout=20)

        assert order["status"] == "ORDER_CANCELLED"
        assert lost_updates(broker) == ["ORDER_CANCELLED"]
        await assert_invariants(system)
        applied = broker.records(topics.ORDER_STATUS_APPLIED)
        assert [r.key for r in applied] == [placed["orderID"]]


async def test_a_lost_order_updated_is_recovered_by_reconciliation_too(tmp_path: Path) -> None:
    broker = LosingBroker(topics.ORDER_UPDATED)
    # The saga would wait an hour to send again; reconciliation asks for it sooner.
    settings = Settings(compensation_timeout=3600, reconcile_after=0.5)
    async with losing(tmp_path, broker, settings) as (system, api):
        placed = await api.place(user=2, product=2, quantity=1)
        order = await api.wait(placed["orderID"], timeout=20)

        assert order["status"] == "ORDER_COMPLETED"
        assert lost_updates(broker) == ["ORDER_COMPLETED"]
        await assert_invariants(system)
        await until(lambda: len(broker.records(topics.ORDER_CREATED)) >= 2)
