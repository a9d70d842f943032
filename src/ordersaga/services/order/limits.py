"""A cap on request bodies, counted in bytes as they arrive.

``Content-Length`` alone cannot be trusted: a chunked request has none, and a client
may send more than it announced. So the body is read here, up to the cap, before the
app sees any of it; a body over the cap is answered 413 and never buffered whole.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordersaga.services.order.errors import error_response
from ordersaga.services.order.schemas import FieldError

MAX_BODY_BYTES = 16 * 1024
"""The largest request body the API reads; an order is well under 100 bytes."""


def too_large_message(max_bytes: int) -> str:
    """What a client whose body was too large is told, naming the limit."""
    return f"request body is larger than {max_bytes} bytes, the most this API reads; send less"


class BodySizeLimit:
    """ASGI middleware answering 413 to any request whose body exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its whole body
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = FieldError(field="body", message=f"must be at most {self.max_bytes} bytes")
        response = error_response(413, too_large_message(self.max_bytes), [field])
        # The rest of the body is not read; the server closes the connection after this.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The request's ``Content-Length``, or 0 when it has none or an unreadable one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` in one message, then defers to ``receive``
    (which reports the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
