"""What the order service knows about orders and products, and the errors a client can cause.

Plain data and rules, no I/O.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ordersaga.contracts.money import to_money
from ordersaga.contracts.statuses import OrderStatus

REASON_MAX_LENGTH = 255
KNOWN_PRODUCTS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a client asks for; everything else (price, amount, status) is decided here."""

    user_id: int
    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Order:
    id: UUID
    user_id: int
    product_id: int
    quantity: int
    amount: Decimal
    status: OrderStatus
    reason: str | None
    created_at: datetime
    updated_at: datetime

    def matches(self, request: OrderRequest) -> bool:
        """Whether ``request`` asks for this very order (an idempotent replay)."""
        return (self.user_id, self.product_id, self.quantity) == (
            request.user_id,
            request.product_id,
            request.quantity,
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """The outcome of placing an order: the order, and whether this request created it."""

    order: Order
    created: bool


def order_amount(price: Decimal, quantity: int) -> Decimal:
    """What an order costs: always the catalog's price times the quantity."""
    return to_money(price * quantity)


def final_reason(status: OrderStatus, reason: str | None) -> str | None:
    """The reason stored with a final status: only a cancellation has one."""
    if status is not OrderStatus.ORDER_CANCELLED:
        return None
    return reason[:REASON_MAX_LENGTH] if reason else None


class OrderRejected(ValueError):
    """A request the service refuses; ``field`` names the part of it that is wrong."""

    field: str = "body"


class UnknownProduct(OrderRejected):
    field = "productID"

    def __init__(self, product_id: int, known: Sequence[int]) -> None:
        shown = ", ".join(str(p) for p in known[:KNOWN_PRODUCTS_SHOWN])
        if len(known) > KNOWN_PRODUCTS_SHOWN:
            shown += ", ..."
        super().__init__(f"unknown productID {product_id}; known products: {shown or 'none'}")
        self.product_id = product_id


class IdempotencyKeyReused(OrderRejected):
    field = "Idempotency-Key"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different order; "
            "send a new key to place a new order"
        )
        self.key = key
