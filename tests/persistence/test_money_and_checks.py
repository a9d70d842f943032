"""Money is exact to the cent, and the database itself refuses what must never happen."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.statuses import PaymentStatus
from ordersaga.messaging.transient import is_transient
from ordersaga.services.order.tables import products
from ordersaga.services.payment.tables import balances, inbox, outbox
from ordersaga.services.payment.wiring import handle_payment
from ordersaga.services.stock.tables import stock
from tests.persistence.conftest import Databases
from tests.persistence.support import charge, deliver


async def value(engine: AsyncEngine, column: Any, where: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(select(column).where(where))


async def set_balance(engine: AsyncEngine, user_id: int, amount: Decimal) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(balances).where(balances.c.user_id == user_id).values(balance=amount)
        )


@pytest.mark.parametrize(
    "amount", [Decimal("0.01"), Decimal("0.10"), Decimal("1234567.89"), Decimal("9999999999.99")]
)
async def test_money_reads_back_exactly(db: Databases, amount: Decimal) -> None:
    engine = await db.fresh("payment")

    await set_balance(engine, 1, amount)

    stored = await value(engine, balances.c.balance, balances.c.user_id == 1)
    assert stored == amount
    assert str(stored) == str(amount)


async def test_charges_in_cents_add_up_exactly(db: Databases) -> None:
    """0.1 + 0.2 != 0.3 in floating point; three charges of 0.10 must empty 0.30."""
    engine = await db.fresh("payment")
    await set_balance(engine, 1, Decimal("0.30"))

    replies = [
        await deliver(engine, inbox, outbox, handle_payment, charge(1, Decimal("0.10")))
        for _ in range(4)
    ]

    assert [getattr(r, "status", None) for r in replies] == [
        PaymentStatus.PAYMENT_APPROVED,
        PaymentStatus.PAYMENT_APPROVED,
        PaymentStatus.PAYMENT_APPROVED,
        PaymentStatus.PAYMENT_REJECTED,
    ]
    assert await value(engine, balances.c.balance, balances.c.user_id == 1) == Decimal("0.00")


async def refused(engine: AsyncEngine, table: Table, where: Any, **values: Any) -> None:
    """The update fails as bad data, not as a fault of the surroundings (database away)."""
    with pytest.raises(IntegrityError) as refusal:
        async with engine.begin() as conn:
            await conn.execute(update(table).where(where).values(**values))
    assert not is_transient(refusal.value)


async def test_the_database_refuses_negative_stock(db: Databases) -> None:
    engine = await db.fresh("stock")

    await refused(engine, stock, stock.c.product_id == 3, quantity=-1)
    await refused(engine, stock, stock.c.product_id == 3, quantity=stock.c.quantity - 4)

    assert await value(engine, stock.c.quantity, stock.c.product_id == 3) == 3


async def test_the_database_refuses_a_negative_balance(db: Databases) -> None:
    engine = await db.fresh("payment")

    await refused(engine, balances, balances.c.user_id == 1, balance=Decimal("-0.01"))
    await refused(
        engine, balances, balances.c.user_id == 1, balance=balances.c.balance - Decimal("100.01")
    )

    assert await value(engine, balances.c.balance, balances.c.user_id == 1) == Decimal("100.00")


async def test_the_database_refuses_a_negative_price(db: Databases) -> None:
    engine = await db.fresh("order")

    await refused(engine, products, products.c.id == 1, price=Decimal("-1.00"))

    assert await value(engine, products.c.price, products.c.id == 1) == Decimal("20.00")
