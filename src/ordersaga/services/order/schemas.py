"""The HTTP API's request and response bodies, with the wire contract's field names."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from ordersaga.contracts.money import Money
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.services.order.model import Order, Product

INT_MAX = 2**31 - 1
"""The largest value an ``INT`` column holds; larger ids cannot exist."""

Id = Annotated[int, Field(gt=0, le=INT_MAX)]


class PlaceOrderBody(BaseModel):
    """What a client sends to place an order. The price comes from the catalog."""

    # Strict: true, 1.5 and "2" are not integers; unknown fields (say, an amount) are refused.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"userID": 1, "productID": 2, "quantity": 1}]},
    )

    userID: Annotated[
        Id | None,
        Field(
            description="The customer; a customer's token may name only itself, and "
            "without userID the order is its own. An operator's token must name one."
        ),
        # May be left out, never null: the schema says an integer.
        WithJsonSchema({"type": "integer", "exclusiveMinimum": 0, "maximum": INT_MAX}),
    ] = None
    productID: Id
    @field_validator("userID", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value

    quantity: Annotated[
        int,
        Field(ge=1, description="How many units; at most ORDERSAGA_MAX_QUANTITY (100 by default)."),
    ] = 1


class OrderOut(BaseModel):
    orderID: UUID
    userID: int
    productID: int
    quantity: int
    amount: Money
    status: OrderStatus
    reason: str | None = Field(description="Why the order was cancelled; null otherwise.")
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, order: Order) -> "OrderOut":
        return cls(
            orderID=order.id,
            userID=order.user_id,
            productID=order.product_id,
            quantity=order.quantity,
            amount=order.amount,
            status=order.status,
            reason=order.reason,
            createdAt=order.created_at,
            updatedAt=order.updated_at,
        )


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int = Field(description="How many orders match the filters, on every page.")
    limit: int
    offset: int


class ProductOut(BaseModel):
    productID: int
    name: str
    price: Money

    @classmethod
    def of(cls, product: Product) -> "ProductOut":
        return cls(productID=product.id, name=product.name, price=product.price)


class Catalog(BaseModel):
    items: list[ProductOut]


class FieldError(BaseModel):
    field: str = Field(
        description="A body field, query or path parameter, header, or 'body' for all of it."
    )
    message: str = Field(description="What is wrong with it.")


class ErrorBody(BaseModel):
    """Every error answer: one sentence, and what is wrong with each field."""

    detail: str = Field(description="What is wrong and, where the client can, how to fix it.")
    errors: list[FieldError] = []


class Healthy(BaseModel):
    status: Literal["ok"] = "ok"


class Unready(BaseModel):
    status: Literal["unready"] = "unready"
    reason: str
