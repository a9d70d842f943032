"""``/api/v1/orders``: place an order, list orders, read one."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from ordersaga.auth.principal import Principal
from ordersaga.contracts.statuses import OrderStatus
from ordersaga.observability.logs import log_context, trace_id_of
from ordersaga.services.order import repository
from ordersaga.services.order.deps import (
    EngineDep,
    PrincipalDep,
    SettingsDep,
    TransactionsDep,
    get_principal,
    rate_limited,
)
from ordersaga.services.order.errors import Forbidden, NotFound
from ordersaga.services.order.model import OrderRequest
from ordersaga.services.order.placing import place_order
from ordersaga.services.order.routers.responses import error_responses
from ordersaga.services.order.schemas import (
    INT_MAX,
    OrderOut,
    OrderPage,
    PlaceOrderBody,
)
from ordersaga.services.order.tracing import saga_traceparent

PREFIX = "/api/v1/orders"

router = APIRouter(prefix=PREFIX, tags=["orders"], dependencies=[Depends(get_principal)])


def _invalid(field: str, kind: str, message: str, value: object, **ctx: object) -> Exception:
    error = {"type": kind, "loc": ("body", field), "msg": message, "input": value}
    return RequestValidationError([{**error, "ctx": ctx} if ctx else error])


def ordering_user(body: PlaceOrderBody, principal: Principal) -> int:
    """Whose order it is: a customer's own (403 for anyone else's); an operator names
    the user."""
    if principal.is_operator:
        if body.userID is None:
            raise _invalid("userID", "missing", "Field required", None)
        return body.userID
    own = principal.user_id
    if own is None or own > INT_MAX:
        raise Forbidden("Authorization", "this token's subject is not a user id: no orders")
    if body.userID is not None and body.userID != own:
        raise Forbidden("userID", f"a customer's token orders for its own userID ({own}) only")
    return own


async def order_request(
    body: PlaceOrderBody, settings: SettingsDep, principal: PrincipalDep
) -> OrderRequest:
    """The validated body, for the caller; the quantity's upper bound is a setting, so it
    is checked here.

    A coroutine, though it never waits, so FastAPI runs it in the loop, not on a thread.
    """
    user = ordering_user(body, principal)
    if body.quantity > settings.max_quantity:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("body", "quantity"),
                    "msg": f"Input should be less than or equal to {settings.max_quantity}",
                    "input": body.quantity,
                    "ctx": {"le": settings.max_quantity},
                }
            ]
        )
    return OrderRequest(user_id=user, product_id=body.productID, quantity=body.quantity)


OrderRequestDep = Annotated[OrderRequest, Depends(order_request)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retrying with the same key returns the same order and creates nothing.",
    ),
]


TraceParent = Annotated[
    str | None,
    Header(
        alias="traceparent",
        include_in_schema=False,
        description="A W3C traceparent: the order's saga joins the caller's trace.",
    ),
]


_LOCATION = {
    "Location": {"description": "Where the order can be read", "schema": {"type": "string"}}
}


_PLACE_ORDER_422 = (
    "The body is not a JSON object sent as application/json, a field is missing, unknown "
    "or out of range, the product is not in the catalog, or the Idempotency-Key is too "
    "long or was used for a different order; the message names which"
)


def location(order_id: UUID) -> str:
    return f"{PREFIX}/{order_id}"


@router.post(
    "",
    status_code=201,
    summary="Place an order",
    description=(
        "The body must be a JSON object sent with `Content-Type: application/json`; any "
        "other content type is answered 422 naming the body, as is malformed JSON. "
        "Without an `Idempotency-Key` every request places a new order."
    ),
    responses={
        201: {"description": "The order was placed", "headers": _LOCATION},
        200: {
            "model": OrderOut,
            "description": "A retry with an Idempotency-Key already used: that order, as it is now",
            "headers": _LOCATION,
        },
        **error_responses(401, 403, 413, 422, 429, 503, descriptions={422: _PLACE_ORDER_422}),
    },
    dependencies=[Depends(rate_limited)],
)
async def create_order(
    request: OrderRequestDep,
    response: Response,
    transactions: TransactionsDep,
    idempotency_key: IdempotencyKey = None,
    traceparent: TraceParent = None,
) -> OrderOut:
    saga_trace = saga_traceparent(traceparent)
    with log_context(trace_id=trace_id_of(saga_trace)):
        placement = await place_order(
            transactions, request, idempotency_key=idempotency_key, traceparent=saga_trace
        )
    response.headers["Location"] = location(placement.order.id)
    if not placement.created:
        response.status_code = 200
    return OrderOut.of(placement.order)


@router.get(
    "",
    summary="List orders, newest first (a customer's own only)",
    responses=error_responses(401, 422, 503),
)
async def list_orders(
    engine: EngineDep,
    principal: PrincipalDep,
    user_id: Annotated[int | None, Query(alias="userID", gt=0, le=INT_MAX)] = None,
    status: Annotated[OrderStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT_MAX)] = 0,
) -> OrderPage:
    if not principal.is_operator:
        own = principal.user_id
        if own is None or user_id not in (None, own):
            return OrderPage(items=[], total=0, limit=limit, offset=offset)
        user_id = own
    where = repository.OrderFilter(user_id=user_id, status=status)
    async with engine.connect() as conn:
        found, total = await repository.list_orders(conn, where, limit=limit, offset=offset)
    return OrderPage(items=[OrderOut.of(o) for o in found], total=total, limit=limit, offset=offset)


@router.get(
    "/{orderID}",
    summary="Read one order (a customer's own only)",
    responses=error_responses(401, 404, 422, 503),
)
async def get_order(
    engine: EngineDep, principal: PrincipalDep, order_id: Annotated[UUID, Path(alias="orderID")]
) -> OrderOut:
    async with engine.connect() as conn:
        order = await repository.get_order(conn, order_id)
    # Another customer's order is answered exactly as a missing one, so ids cannot be probed.
    if order is None or not (principal.is_operator or order.user_id == principal.user_id):
        raise NotFound("orderID", f"order {order_id} not found")
    return OrderOut.of(order)
