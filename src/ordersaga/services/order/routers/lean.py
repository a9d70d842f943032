"""A lean way through the two hottest operations, ``POST /api/v1/orders`` and
``GET /api/v1/orders/{orderID}``, beside FastAPI's.

FastAPI's way (resolving a dozen dependencies, validating the body with pydantic,
serialising through the response model) cost the order service more CPU per order
than the saga's own work. The lean way reads what a well-formed request carries
directly and answers it with the very bytes FastAPI would. Anything it is not sure of —
no or an unverifiable token, a body not exactly the schema's, a client over its rate —
goes FastAPI's way instead, so every error is answered, and documented, exactly as
before: the route, its OpenAPI operation and its error handlers are FastAPI's. Errors
of the work itself (an unknown product, a reused key, the database away, an order not
found) are raised as on FastAPI's way, to the same handlers.
"""

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from fastapi.routing import APIRoute

from ordersaga.auth.principal import UNAUTHENTICATED_OPERATOR, Principal
from ordersaga.services.order.deps import OrderServiceContext

LeanHandler = Callable[[OrderServiceContext, Principal, Request], Awaitable[Response | None]]
"""Answers a request whose caller is known, or ``None``: FastAPI's way answers it."""

_LEAN = "__lean_handler__"


def lean(handler: LeanHandler) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorates a route function (under its FastAPI decorator) with its lean way."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        setattr(endpoint, _LEAN, handler)
        return endpoint

    return mark


class LeanRoute(APIRoute):
    """A route that tries its endpoint's lean way first, if it has one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        handler: LeanHandler | None = getattr(self.endpoint, _LEAN, None)
        if handler is None:
            return standard

        async def either(request: Request) -> Response:
            context = request.app.state.order_service
            principal = await _caller(context, request)
            if principal is not None:
                answer = await handler(context, principal, request)
                if answer is not None:
                    return answer
            return await standard(request)

        return either


async def _caller(context: OrderServiceContext, request: Request) -> Principal | None:
    """The caller, when its token verifies (verified tokens are remembered); ``None``
    for anything FastAPI's way must answer."""
    if context.verifier is None:
        return UNAUTHENTICATED_OPERATOR
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer ") or len(header) < 8:
        return None
    try:
        return await context.verifier.verify(header[7:])
    except Exception:  # refused, or the keys away: answered FastAPI's way
        return None


def json_response(content: bytes, status_code: int) -> Response:
    """What FastAPI answers for a response model serialised to ``content``."""
    return Response(content, status_code, media_type="application/json")


LEAN_BODY_BYTES = 512
"""The largest body read the lean way; an order's is well under 100 bytes."""


async def json_object(request: Request) -> dict[str, Any] | None:
    """The body, when it is a small JSON object sent as ``application/json``."""
    if request.headers.get("content-type") != "application/json":
        return None
    raw = await request.body()
    if len(raw) > LEAN_BODY_BYTES:
        return None
    try:
        body = json.loads(raw.decode())
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deeply
        return None
    return body if isinstance(body, dict) else None


def positive_int(value: object, most: int) -> int | None:
    """``value`` when it is an integer (not a bool, not a float) in 1..``most``."""
    if type(value) is not int or not 0 < value <= most:
        return None
    return value


def canonical_uuid(text: object) -> UUID | None:
    """``text`` as a UUID when written the canonical way (lowercase, hyphenated): the
    other spellings pydantic may read differently go FastAPI's way."""
    if not isinstance(text, str) or len(text) != 36:
        return None
    try:
        found = UUID(text)
    except ValueError:
        return None
    return found if str(found) == text else None
