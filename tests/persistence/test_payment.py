"""The payment service's handlers on every backend: charging, refunding, never overdrawing."""

import asyncio
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.messages import (
    CancelPayment,
    PaymentCancelled,
    PaymentProcessed,
    ProcessPayment,
)
from ordersaga.contracts.statuses import PaymentCancelStatus, PaymentStatus
from ordersaga.services.payment.tables import balances, inbox, outbox
from ordersaga.services.payment.wiring import handle_payment
from tests.persistence.conftest import Databases
from tests.persistence.support import cancel_payment, charge, deliver, until_committed


async def processed(engine: AsyncEngine, command: ProcessPayment) -> PaymentProcessed:
    reply = await until_committed(lambda: deliver(engine, inbox, outbox, handle_payment, command))
    assert isinstance(reply, PaymentProcessed)
    return reply


async def cancelled(engine: AsyncEngine, command: CancelPayment) -> PaymentCancelled:
    reply = await until_committed(lambda: deliver(engine, inbox, outbox, handle_payment, command))
    assert isinstance(reply, PaymentCancelled)
    return reply


async def balance(engine: AsyncEngine, user_id: int) -> Decimal:
    async with engine.connect() as conn:
        found = await conn.scalar(select(balances.c.balance).where(balances.c.user_id == user_id))
    assert isinstance(found, Decimal)
    return found


async def test_a_charge_and_its_refund_happen_once(db: Databases) -> None:
    engine = await db.fresh("payment")
    command = charge(user_id=3, amount=Decimal("50.00"))

    approved = await processed(engine, command)
    after_charge = await balance(engine, 3)
    first = await cancelled(engine, cancel_payment(command.orderID, 3, Decimal("50.00")))
    second = await cancelled(engine, cancel_payment(command.orderID, 3, Decimal("50.00")))

    assert approved.status is PaymentStatus.PAYMENT_APPROVED
    assert after_charge == Decimal("150.00")
    assert (first.status, first.amount) == (
        PaymentCancelStatus.PAYMENT_REFUNDED,
        Decimal("50.00"),
    )
    assert (second.status, second.amount) == (
        PaymentCancelStatus.NOTHING_CHARGED,
        Decimal("0.00"),
    )
    assert await balance(engine, 3) == Decimal("200.00")


async def test_a_charge_the_balance_cannot_cover_is_refused_with_the_figures(
    db: Databases,
) -> None:
    engine = await db.fresh("payment")

    reply = await processed(engine, charge(user_id=1, amount=Decimal("100.01")))

    assert reply.status is PaymentStatus.PAYMENT_REJECTED
    assert reply.reason == "insufficient funds: balance 100.00, amount 100.01"
    assert await balance(engine, 1) == Decimal("100.00")


async def test_a_cancel_before_its_payment_leaves_a_tombstone(db: Databases) -> None:
    engine = await db.fresh("payment")
    command = charge(user_id=2, amount=Decimal("30.00"))

    first = await cancelled(engine, cancel_payment(command.orderID, 2, Decimal("30.00")))
    late = await processed(engine, command)

    assert first.status is PaymentCancelStatus.NOTHING_CHARGED
    assert late.status is PaymentStatus.PAYMENT_REJECTED
    assert await balance(engine, 2) == Decimal("100.00")


async def test_concurrent_charges_never_overdraw(db: Databases) -> None:
    await db.fresh("payment")
    engines = db.engines("payment", 12)

    replies = await asyncio.gather(
        *(processed(e, charge(user_id=1, amount=Decimal("30.00"))) for e in engines)
    )

    assert [r.status for r in replies].count(PaymentStatus.PAYMENT_APPROVED) == 3
    assert await balance(engines[0], 1) == Decimal("10.00")


async def test_concurrent_commands_for_one_order_charge_once_and_refund_once(
    db: Databases,
) -> None:
    await db.fresh("payment")
    engines = db.engines("payment", 8)
    command = charge(user_id=3, amount=Decimal("20.00"))

    charges = await asyncio.gather(*(processed(e, command) for e in engines))
    after_charges = await balance(engines[0], 3)
    refunds = await asyncio.gather(
        *(cancelled(e, cancel_payment(command.orderID, 3, Decimal("20.00"))) for e in engines)
    )

    assert {c.status for c in charges} == {PaymentStatus.PAYMENT_APPROVED}
    assert after_charges == Decimal("180.00")
    assert sorted(r.amount for r in refunds) == [Decimal("0.00")] * 7 + [Decimal("20.00")]
    assert await balance(engines[0], 3) == Decimal("200.00")
