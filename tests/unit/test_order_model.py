"""The order service's rules: amounts, reasons, idempotent replays, error messages."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordersaga.contracts.statuses import OrderStatus
from ordersaga.services.order.model import (
    IdempotencyKeyReused,
    Order,
    OrderRequest,
    UnknownProduct,
    final_reason,
    order_amount,
)


@given(cents=st.integers(0, 10**8), quantity=st.integers(1, 1000))
def test_amount_is_price_times_quantity_to_the_cent(cents: int, quantity: int) -> None:
    price = Decimal(cents) / 100

    amount = order_amount(price, quantity)

    assert amount == Decimal(cents * quantity) / 100
    assert amount.as_tuple().exponent == -2


def test_amount_of_sample_price() -> None:
    assert order_amount(Decimal("30.00"), 3) == Decimal("90.00")


@pytest.mark.parametrize(
    ("status", "reason", "kept"),
    [
        (OrderStatus.ORDER_CANCELLED, "out of stock", "out of stock"),
        (OrderStatus.ORDER_CANCELLED, None, None),
        (OrderStatus.ORDER_CANCELLED, "", None),
        (OrderStatus.ORDER_COMPLETED, "stray", None),
        (OrderStatus.ORDER_CANCELLED, "r" * 300, "r" * 255),
    ],
)
def test_only_a_cancellation_keeps_a_reason(
    status: OrderStatus, reason: str | None, kept: str | None
) -> None:
    assert final_reason(status, reason) == kept


def an_order(user_id: int = 1, product_id: int = 2, quantity: int = 3) -> Order:
    now = datetime.now(UTC)
    return Order(
        id=uuid4(),
        user_id=user_id,
        product_id=product_id,
        quantity=quantity,
        amount=Decimal("90.00"),
        status=OrderStatus.ORDER_CREATED,
        reason=None,
        created_at=now,
        updated_at=now,
    )


def test_same_request_matches_its_order() -> None:
    assert an_order().matches(OrderRequest(user_id=1, product_id=2, quantity=3))


@pytest.mark.parametrize(
    "request_",
    [
        OrderRequest(user_id=9, product_id=2, quantity=3),
        OrderRequest(user_id=1, product_id=9, quantity=3),
        OrderRequest(user_id=1, product_id=2, quantity=9),
    ],
)
def test_different_request_does_not_match(request_: OrderRequest) -> None:
    assert not an_order().matches(request_)


def test_unknown_product_lists_known_products() -> None:
    error = UnknownProduct(9, [1, 2, 3])

    assert str(error) == "unknown productID 9; known products: 1, 2, 3"
    assert error.field == "productID"


def test_unknown_product_in_large_or_empty_catalog() -> None:
    assert str(UnknownProduct(99, list(range(1, 50)))).endswith("19, 20, ...")
    assert str(UnknownProduct(1, [])) == "unknown productID 1; known products: none"


def test_reused_key_says_what_to_do() -> None:
    error = IdempotencyKeyReused("abc")

    assert error.field == "Idempotency-Key"
    assert "different order" in str(error)
    assert "new key" in str(error)
