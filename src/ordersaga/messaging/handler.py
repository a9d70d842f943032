"""What a handler is given, and running one for a decoded record inside a transaction.

A handler that finds the message itself invalid (it decodes, but can never be handled,
however often it is retried) raises :class:`InvalidMessage`; the consumer loop then
dead-letters that record alone. Any other exception is retried.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.port import OutgoingMessage, Record


class InvalidMessage(Exception):
    """Raised by a handler: this message is itself invalid and can never be handled.

    Only for the message's own fault (a value it carries breaks a rule the contract
    cannot express), never for a database or broker fault or a bug: the consumer loop
    dead-letters the record, with ``reason``, and handles the rest of its batch. A
    batch handler says which of its items with :meth:`HandlerContext.invalid`.
    """

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
        """The ``message-id`` of the invalid record; None for the record being handled."""


@dataclass
class HandlerContext:
    """What a handler may touch: its transaction, and a way to send messages from it."""

    conn: AsyncConnection
    cause: Trace
    outgoing: list[OutgoingMessage] = field(default_factory=list)

    def send(self, topic: str, message: WireMessage) -> None:
        """Send ``message`` on ``topic`` if, and only if, this transaction commits."""
        self.outgoing.append(envelope(topic, message, self.cause))

    def invalid(self, reason: str) -> InvalidMessage:
        """The exception to raise when this context's message is itself invalid."""
        return InvalidMessage(reason, message_id=self.cause.message_id)


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One new record of a batch as a batch handler sees it: topic, message and context."""

    topic: str
    message: Any
    context: HandlerContext


BatchHandler = Callable[[AsyncConnection, Sequence[BatchItem]], Awaitable[None]]
"""Handles several records in the transaction of its connection, with the effect of
handling them one by one, in the order given; sends through each item's context."""


@dataclass(frozen=True)
class Subscription:
    """A topic and its handler; optionally a handler for several of its records at once.

    Consecutive new records of a polled batch whose subscriptions share one
    ``handle_batch`` (the same object) go to it in one call. ``handle`` stays the
    handler of a record on its own: when a batch is handled again record by record,
    and wherever no batch handler is given. ``model`` decodes the topic's messages when
    the topic is not the contract's (default: the contract's model of the topic).
    """

    topic: str
    handle: Handler
    handle_batch: BatchHandler | None = None
    model: type[WireMessage] | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    """A record that decoded into its topic's message and carries a ``message-id``."""

    record: Record
    message: WireMessage
    message_id: str


def context_for(conn: AsyncConnection, item: Decoded) -> HandlerContext:
    """A fresh context for handling ``item`` in the transaction of ``conn``."""
    return HandlerContext(conn, Trace.from_headers(dict(item.record.headers), item.message.orderID))


async def run_handler(conn: AsyncConnection, item: Decoded, handler: Handler) -> HandlerContext:
    """Run ``handler`` for ``item`` in the transaction of ``conn``; its context, with what it
    sent (for the caller to write to the outbox in the same transaction)."""
    context = context_for(conn, item)
    try:
        await handler(context, item.message)
    except InvalidMessage as invalid:
        if invalid.message_id is None:
            raise InvalidMessage(invalid.reason, message_id=item.message_id) from invalid
        raise
    return context


async def run_batch_handler(
    conn: AsyncConnection, items: Sequence[Decoded], handler: BatchHandler
) -> list[HandlerContext]:
    """Run ``handler`` for ``items`` in the transaction of ``conn``; their contexts, in order."""
    batch = [BatchItem(i.record.topic, i.message, context_for(conn, i)) for i in items]
    try:
        await handler(conn, batch)
    except InvalidMessage as invalid:
        if invalid.message_id is None and len(items) == 1:
            raise InvalidMessage(invalid.reason, message_id=items[0].message_id) from invalid
        raise
    return [item.context for item in batch]
