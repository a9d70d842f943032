"""The error answers a route documents in the OpenAPI schema, all as an ``ErrorBody``."""

from collections.abc import Mapping
from typing import Any

from ordersaga.services.order.schemas import ErrorBody

_DESCRIPTIONS = {
    401: "No bearer token, or one that is not accepted; WWW-Authenticate says why",
    403: "The token may not do this; the message says why",
    404: "Nothing with that id",
    413: "The request body is larger than the limit the message names",
    422: "A field, query parameter, header or the body is invalid; the message names it",
    429: "Too many orders from this client; retry after Retry-After seconds",
    503: "The order database is unavailable; retry after Retry-After seconds",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer"},
    }
}

_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "Bearer, with error=\"invalid_token\" and why when a token was sent",
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def error_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that may answer each of ``statuses`` with an ErrorBody;
    ``descriptions`` replace the general ones where a route knows more."""
    own = descriptions or {}
    return {s: _error_response(s, own.get(s, _DESCRIPTIONS[s])) for s in statuses}


def _error_response(status: int, description: str) -> dict[str, Any]:
    documented: dict[str, Any] = {"model": ErrorBody, "description": description}
    if status in _HEADERS:
        documented["headers"] = _HEADERS[status]
    return documented
