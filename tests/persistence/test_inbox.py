"""The inbox makes each message's effect happen once, however often it is delivered."""

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.contracts.messages import ProductReserved, WireMessage
from ordersaga.contracts.statuses import StockStatus
from ordersaga.messaging.inbox import record_new, record_once
from ordersaga.services.stock.tables import inbox, outbox, stock
from ordersaga.services.stock.wiring import handle_stock
from tests.persistence.conftest import Databases
from tests.persistence.support import count, deliver, reserve, until_committed


async def test_a_message_id_is_recorded_once(db: Databases) -> None:
    engine = await db.fresh("stock")

    async with engine.begin() as conn:
        first = await record_once(conn, inbox, "m-1", "reserve-product")
    async with engine.begin() as conn:
        second = await record_once(conn, inbox, "m-1", "reserve-product")
        other = await record_once(conn, inbox, "m-2", "reserve-product")

    assert (first, second, other) == (True, False, True)
    assert await count(engine, inbox) == 2


async def test_a_message_id_recorded_in_a_rolled_back_transaction_is_not_recorded(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")

    async with engine.connect() as conn:
        assert await record_once(conn, inbox, "m-1", "reserve-product")
        await conn.rollback()
    async with engine.begin() as conn:
        again = await record_once(conn, inbox, "m-1", "reserve-product")

    assert again is True


async def test_concurrent_deliveries_of_one_message_take_effect_once(db: Databases) -> None:
    """The duplicates race past the look-up; the primary key makes all but one lose."""
    await db.fresh("stock")
    command = reserve(product_id=1, quantity=2)
    engines = db.engines("stock", 8)

    async def delivery(engine: AsyncEngine) -> WireMessage | None:
        return await until_committed(
            lambda: deliver(engine, inbox, outbox, handle_stock, command, message_id="same")
        )

    replies = await asyncio.gather(*(delivery(e) for e in engines))

    handled = [r for r in replies if r is not None]
    assert len(handled) == 1
    assert isinstance(handled[0], ProductReserved)
    assert handled[0].status is StockStatus.AVAILABLE
    async with engines[0].connect() as conn:
        on_hand = await conn.scalar(select(stock.c.quantity).where(stock.c.product_id == 1))
    assert on_hand == 3
    assert await count(engines[0], inbox) == 1
    assert await count(engines[0], outbox) == 1


async def test_a_batch_records_only_the_message_ids_not_seen_before_and_each_once(
    db: Databases,
) -> None:
    engine = await db.fresh("stock")
    async with engine.begin() as conn:
        await record_once(conn, inbox, "m-1", "reserve-product")

    async with engine.begin() as conn:
        new = await record_new(
            conn,
            inbox,
            [("m-1", "reserve-product"), ("m-2", "reserve-product"), ("m-2", "reserve-product")],
        )

    assert new == {"m-2"}
    assert await count(engine, inbox) == 2
