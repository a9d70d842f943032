"""Readable 4xx answers: one sentence that names the field, and a list of field errors.

FastAPI's own validation errors are lists of pydantic error dicts; a client deserves
"quantity: must be less than or equal to 100" instead.
"""

import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from ordersaga.auth.challenge import NotAuthenticated
from ordersaga.messaging.transient import is_transient
from ordersaga.services.order.model import OrderRejected
from ordersaga.services.order.schemas import ErrorBody, FieldError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_INTEGER_ERRORS = frozenset({"int_type", "int_parsing", "int_from_float", "int_parsing_size"})
_OBJECT_ERRORS = frozenset({"model_attributes_type", "model_type", "dict_type"})
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "greater than or equal to"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "less than or equal to"),
}
_UNPARSABLE_BODY = "There was an error parsing the body"  # FastAPI's words for it
_SAMPLE_UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


SERVER_OWNED_FIELDS = frozenset({"orderID", "amount", "status", "reason", "createdAt", "updatedAt"})
"""Fields of an order the service sets; a client that sends one is told so."""


Unauthorized = NotAuthenticated
"""No token, or one the order API does not accept: 401 with ``WWW-Authenticate``."""


class Forbidden(Exception):
    """The caller is known but may not do this; answered 403."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


class TooManyRequests(Exception):
    """The client is over its rate; answered 429 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class KeysUnavailable(Exception):
    """The keys that verify tokens cannot be had (the JWKS is unreachable); 503."""


class NotFound(Exception):
    """Something the client named does not exist; answered 404."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def field_name(loc: Sequence[int | str]) -> str:
    """``("body", "quantity")`` → ``quantity``; the request part alone names the body."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def shown(value: Any) -> str:
    """A short rendering of what the client sent, as JSON would spell it."""
    if value is None or isinstance(value, bool | int | float | str):
        text = json.dumps(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, list | tuple):
        return "an array"
    return "an object"


def problem(error: Mapping[str, Any]) -> str:
    """What is wrong, in words, for one pydantic error (without the field's name)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not an accepted field"
    if kind == "json_invalid":
        at = next((p for p in error.get("loc", ()) if isinstance(p, int)), None)
        where = f" at character {at}" if at is not None else ""
        return f"malformed JSON{where}: {ctx.get('error', 'cannot be parsed')}"
    if kind in _OBJECT_ERRORS and isinstance(error.get("input"), bytes | bytearray):
        return "must be a JSON object sent with Content-Type: application/json"
    if kind in _OBJECT_ERRORS:
        return f"must be a JSON object, not {shown(error.get('input'))}"
    if kind in _INTEGER_ERRORS:
        return f"must be an integer, not {shown(error.get('input'))}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}"
    if kind == "enum":
        return f"must be one of {ctx.get('expected')}"
    if kind.startswith("uuid_"):
        return f"must be a UUID such as {_SAMPLE_UUID}"
    message = str(error.get("msg", "is not valid"))
    return message.replace("Input should", "should", 1).replace("String should", "should", 1)


def field_errors(errors: Sequence[Any], accepted: Sequence[str] = ()) -> list[FieldError]:
    """One :class:`FieldError` per pydantic error dict."""
    result = []
    for error in errors:
        field = field_name(error.get("loc", ()))
        message = problem(error)
        if accepted and error.get("type") == "extra_forbidden":
            if field in SERVER_OWNED_FIELDS:
                message += " (the server sets it)"
            message += f"; accepted fields: {', '.join(accepted)}"
        if accepted and error.get("type") == "missing" and field == "body":
            message += f": send a JSON object with {', '.join(accepted)}"
        result.append(FieldError(field=field, message=message))
    return result


def error_response(status: int, detail: str, errors: Sequence[FieldError] = ()) -> JSONResponse:
    """A JSON :class:`ErrorBody` answer."""
    body = ErrorBody(detail=detail, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def allowed_methods(request: Request, router_allows: str = "") -> list[str]:
    """Every method the request's path is documented for, plus ``router_allows``.

    The router answers 405 from the first route whose path matched, so its own
    ``Allow`` names that route's methods only: ``POST`` where ``GET`` works as well.
    The OpenAPI document knows them all, whatever the router's internals.
    """
    methods = {m.strip().upper() for m in router_allows.split(",") if m.strip()}
    paths: Mapping[str, Mapping[str, Any]] = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        if _path_pattern(template).fullmatch(_route_path(request)):
            methods |= {m.upper() for m in operations if m.upper() in _METHODS}
    return sorted(methods)


def _route_path(request: Request) -> str:
    """The path the routes see: without the ``root_path`` a proxy mounts the API under."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


@functools.cache
def _path_pattern(template: str) -> re.Pattern[str]:
    """``/orders/{orderID}`` → a pattern matching ``/orders/`` and one path segment."""
    return re.compile("[^/]+".join(re.escape(part) for part in re.split(r"{[^/{}]+}", template)))


def method_not_allowed(request: Request, router_allows: str) -> JSONResponse:
    """405 with an ``Allow`` header listing every method the path supports."""
    allowed = allowed_methods(request, router_allows)
    detail = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
    response = error_response(405, detail)
    response.headers["Allow"] = ", ".join(allowed)
    return response


def unparsable_body(cause: BaseException | None) -> JSONResponse:
    """422 for a body the JSON parser gave up on: not UTF-8, a number too long, or
    arrays nested deeper than it recurses."""
    if isinstance(cause, RecursionError):
        message = "malformed JSON: nested too deeply"
    else:
        message = "malformed JSON: cannot be parsed as UTF-8 JSON"
    return error_response(422, f"body: {message}", [FieldError(field="body", message=message)])


def install_error_handlers(app: FastAPI, accepted_body_fields: Sequence[str] = ()) -> None:
    """Make every error answer a readable :class:`ErrorBody`; ``accepted_body_fields``
    help a client who sent an unknown field."""

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc.errors(), accepted_body_fields)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
        return error_response(422, detail, errors)

    async def on_rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OrderRejected)
        return error_response(422, str(exc), [FieldError(field=exc.field, message=str(exc))])

    async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFound)
        return error_response(404, exc.detail, [FieldError(field=exc.field, message="not found")])

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            return unparsable_body(exc.__cause__)
        if exc.status_code == 405:
            return method_not_allowed(request, (exc.headers or {}).get("Allow", ""))
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def on_internal(request: Request, exc: Exception) -> JSONResponse:
        # Still an ErrorBody, so a client parses every error the same way; the server
        # logs the traceback itself.
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(500, "internal error; the request may be retried later")

    async def on_database_down(_: Request, exc: Exception) -> JSONResponse:
        # The database being away is the client's cue to retry, not a server bug.
        log.warning("order database unavailable: %s", exc)
        response = error_response(503, "the order database is unavailable; retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    app.add_exception_handler(RequestValidationError, on_validation)

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # A pool or lock timeout, a busy or restarting server... is the database's state,
        # not a bug: 503 as for a database that is away. Anything else is a bug.
        if is_transient(exc):
            return await on_database_down(request, exc)
        return await on_internal(request, exc)

    app.add_exception_handler(OperationalError, on_database_down)
    for kind in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(kind, on_database_error)

    async def on_unauthorized(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Unauthorized)
        response = error_response(
            401, exc.reason, [FieldError(field="Authorization", message=exc.reason)]
        )
        response.headers["WWW-Authenticate"] = exc.challenge
        return response

    async def on_forbidden(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Forbidden)
        return error_response(403, exc.detail, [FieldError(field=exc.field, message=exc.detail)])

    async def on_too_many(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TooManyRequests)
        detail = f"too many orders from this client; retry after {exc.retry_after} s"
        response = error_response(429, detail)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def on_keys_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("cannot verify tokens: %s", exc.__cause__ or exc)
        response = error_response(503, "tokens cannot be verified right now; retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    app.add_exception_handler(Unauthorized, on_unauthorized)
    app.add_exception_handler(Forbidden, on_forbidden)
    app.add_exception_handler(TooManyRequests, on_too_many)
    app.add_exception_handler(KeysUnavailable, on_keys_unavailable)
    app.add_exception_handler(OrderRejected, on_rejected)
    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_internal)
