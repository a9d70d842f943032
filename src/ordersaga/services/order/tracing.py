"""The API's server spans: one per HTTP request, named by its route.

A request's ``traceparent`` header makes its span a child of the caller's span, so an
order placed from a traced client is a part of the client's trace. While a request is
handled its span is the current one, which is how placing an order finds the
``traceparent`` its ``order-created`` carries (:func:`saga_traceparent`).
"""

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordersaga.contracts import headers as h
from ordersaga.observability.tracing import (
    Tracing,
    current_traceparent,
    origin_traceparent,
)

_TRACEPARENT = h.TRACEPARENT.encode()

UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths polled by probes and scrapers: a trace each would bury the orders' traces."""


class ServerSpans:
    """ASGI middleware: each HTTP request (but probes' and scrapers') in a server span of
    ``tracing``; nothing at all when tracing is off."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tracing.enabled or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = next((v.decode("latin-1") for k, v in scope["headers"] if k == _TRACEPARENT), None)
        span = self.tracing.start(
            method,
            SpanKind.SERVER,
            parent,
            lambda: {"http.request.method": method, "url.path": scope["path"]},
        )
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: BaseException | None = None
        try:
            with self.tracing.current(span):
                await self.app(scope, receive, sending)
        except BaseException as raised:
            error = raised
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.rename(f"{method} {route}")
            if span.recording:
                span.set({"http.response.status_code": status})
                if route:
                    span.set({"http.route": route})
            span.end(error or (ServerError(status) if status >= 500 else None))


class ServerError(Exception):
    """What the span of a request answered with a 5xx status ends with."""

    def __init__(self, status: int) -> None:
        super().__init__(f"answered {status}")


def saga_traceparent(client_header: str | None) -> str:
    """The ``traceparent`` of the saga an order placed now starts: the current request's
    span when tracing, else the client's ``traceparent`` (or a new trace's)."""
    return current_traceparent() or origin_traceparent(client_header)
