"""Idempotency keys are compared byte for byte, on every database."""

import pytest

from ordersaga.services.order.model import OrderRequest
from ordersaga.services.order.placing import place_order
from ordersaga.services.order.tables import orders
from tests.persistence.conftest import Databases
from tests.persistence.support import count
from tests.support import order_units

REQUEST = OrderRequest(user_id=1, product_id=2, quantity=1)


@pytest.mark.parametrize(
    ("first", "second"),
    [("Key-A", "key-a"), ("k", "k "), ("k", " k"), ("straße", "strasse"), ("é", "e")],
)
async def test_keys_that_differ_in_any_byte_make_different_orders(
    db: Databases, first: str, second: str
) -> None:
    engine = await db.fresh("order")

    made = [
        await place_order(order_units(engine), REQUEST, idempotency_key=key)
        for key in (first, second)
    ]

    assert [p.created for p in made] == [True, True]
    assert made[0].order.id != made[1].order.id
    assert await count(engine, orders) == 2


async def test_the_same_key_returns_the_same_order(db: Databases) -> None:
    engine = await db.fresh("order")

    made = [
        await place_order(order_units(engine), REQUEST, idempotency_key=key)
        for key in ("Key-A", "key-a", "Key-A", "key-a")
    ]

    assert [p.created for p in made] == [True, True, False, False]
    assert made[2].order.id == made[0].order.id
    assert made[3].order.id == made[1].order.id
    assert await count(engine, orders) == 2
