"""What a handler is given, and running one for a decoded record inside a transaction."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.port import OutgoingMessage, Record


@dataclass
class HandlerContext:
    """What a handler may touch: its transaction, and a way to send messages from it."""

    conn: AsyncConnection
    cause: Trace
    outgoing: list[OutgoingMessage] = field(default_factory=list)

    def send(self, topic: str, message: WireMessage) -> None:
        """Send ``message`` on ``topic`` if, and only if, this transaction commits."""
        self.outgoing.append(envelope(topic, message, self.cause))


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    topic: str
    handle: Handler


@dataclass(frozen=True, slots=True)
class Decoded:
    """A record that decoded into its topic's message and carries a ``message-id``."""

    record: Record
    message: WireMessage
    message_id: str


async def run_handler(conn: AsyncConnection, item: Decoded, handler: Handler) -> HandlerContext:
    """Run ``handler`` for ``item`` in the transaction of ``conn``; its context, with what it
    sent (for the caller to write to the outbox in the same transaction)."""
    context = HandlerContext(
        conn, Trace.from_headers(dict(item.record.headers), item.message.orderID)
    )
    await handler(context, item.message)
    return context
