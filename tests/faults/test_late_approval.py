"""A payment approved too late: the saga has given up on it, so the money goes back."""

from collections.abc import Sequence
from pathlib import Path

from ordersaga.config import SAMPLE_BALANCES, SAMPLE_STOCK, Settings
from ordersaga.contracts import topics
from ordersaga.contracts.codec import decode
from ordersaga.contracts.messages import PaymentProcessed
from ordersaga.contracts.statuses import PaymentStatus
from ordersaga.messaging.memory import InProcessBroker, InProcessProducer
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.tools.verify import snapshot, verify
from tests.support import until
from tests.system.conftest import api_of, failed


class HoldingProducer(InProcessProducer):
    """Acknowledges ``payment-processed`` replies but keeps them until released."""

    def __init__(self, broker: "LateApprovalBroker") -> None:
        super().__init__(broker)
        self._holder = broker

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        held = [m for m in messages if m.topic == topics.PAYMENT_PROCESSED]
        self._holder.held.extend(held)
        await super().send_batch([m for m in messages if m.topic != topics.PAYMENT_PROCESSED])


class LateApprovalBroker(InProcessBroker):
    def __init__(self) -> None:
        super().__init__(None, partitions=2)
        self.held: list[OutgoingMessage] = []

    def producer(self) -> InProcessProducer:
        return HoldingProducer(self)

    def release(self) -> None:
        self._append(self.held)
        self.held.clear()


async def test_an_approval_after_the_payment_timeout_is_refunded_and_the_stock_released(
    tmp_path: Path,
) -> None:
    settings = Settings(
        partitions=2,
        reserve_timeout=10.0,
        payment_timeout=0.3,
        compensation_timeout=10.0,
        timer_interval=0.02,
    )
    broker = LateApprovalBroker()
    system = EmbeddedSystem(tmp_path, settings, broker=broker)
    async with system, api_of(system) as api:
        placed = await api.place(1, 1, 2)
        await until(lambda: bool(broker.held), 10.0)
        approval = decode(topics.PAYMENT_PROCESSED, broker.held[0].value)
        assert isinstance(approval, PaymentProcessed)
        assert approval.status is PaymentStatus.PAYMENT_APPROVED

        order = await api.wait(placed["orderID"], timeout=10.0)
        assert order["status"] == "ORDER_CANCELLED"
        assert "payment did not answer" in order["reason"]

        broker.release()  # the approval arrives, long after the saga gave up on it
        orchestrator = system.endpoints["orchestrator"].consumer.group
        end = broker.end_offsets(topics.PAYMENT_PROCESSED)
        await until(
            lambda: all(broker.committed(orchestrator).get(tp, 0) >= o for tp, o in end.items()),
            10.0,
        )
        checks = await verify(system.engines)
        state = await snapshot(system.engines)
    await broker.close()

    assert not failed(checks), failed(checks)
    assert {p.status for p in state.payments} == {"REFUNDED"}
    balances = {b.user_id: b.balance for b in state.balances}
    assert balances[1] == SAMPLE_BALANCES[1]
    assert {s.product_id: s.quantity for s in state.stock} == SAMPLE_STOCK
    assert {r.status for r in state.reservations} == {"RELEASED"}
