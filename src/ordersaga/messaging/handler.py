"""What a handler is given, and running one for the decoded records of a batch.

A subscription names a topic, the model its messages decode into and its handler. A
handler always takes a batch: consecutive new records whose subscriptions share it, in
the order read, in one transaction; a lone record is a batch of one.

A handler that finds a message itself invalid (it decodes, but can never be handled,
however often it is retried) raises :class:`InvalidMessage`; the consumer loop then
dead-letters that record alone. Any other exception is retried.
"""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.contracts.headers import CAUSATION_ID
from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.port import OutgoingMessage, Record
from ordersaga.observability.logs import log_context, trace_id_of


class Keyed(Protocol):
    """What messaging needs of a message: its key, which is also the saga id of a
    message that carries no trace."""

    @property
    def key(self) -> str: ...


class InvalidMessage(Exception):
    """Raised by a handler: this message is itself invalid and can never be handled.

    Only for the message's own fault (a value it carries breaks a rule the contract
    cannot express), never for a database or broker fault or a bug: the consumer loop
    dead-letters the record, with ``reason``, and handles the rest of its batch. A
    handler says which of its items with :meth:`HandlerContext.invalid`.
    """

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
        """The ``message-id`` of the invalid record; None for a batch of one's record."""


@dataclass
class HandlerContext:
    """What handling one record may touch: its transaction, and a way to send from it."""

    conn: AsyncConnection
    cause: Trace
    outgoing: list[OutgoingMessage] = field(default_factory=list)
    record: Record | None = None
    """The record being handled (None for a context made by hand)."""

    def send(self, topic: str, message: WireMessage, *, message_id: str | None = None) -> None:
        """Send ``message`` on ``topic`` if, and only if, this transaction commits (as
        ``message_id``, if the handler recorded one for it)."""
        self.outgoing.append(envelope(topic, message, self.cause, message_id=message_id))

    def logged(self) -> AbstractContextManager[None]:
        """While inside, log records name this message: its saga, order (every topic's
        key is the order id, by the wire contract), trace, id and place in its topic."""
        record = self.record
        return log_context(
            saga_id=self.cause.saga_id,
            order_id=record.key if record else None,
            trace_id=trace_id_of(self.cause.traceparent),
            message_id=self.cause.message_id or None,
            topic=record.topic if record else None,
            partition=record.partition if record else None,
            offset=record.offset if record else None,
        )

    def invalid(self, reason: str) -> InvalidMessage:
        """The exception to raise when this context's message is itself invalid."""
        return InvalidMessage(reason, message_id=self.cause.message_id)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One new record of a batch as its handler sees it: topic, message and context, and
    where the record was read (partition, offset) with its ``causation-id``."""

    topic: str
    message: Any
    context: HandlerContext
    partition: int | None = None
    offset: int | None = None
    causation_id: str | None = None


BatchHandler = Callable[[AsyncConnection, Sequence[BatchItem]], Awaitable[None]]
"""Handles records in the transaction of its connection, with the effect of handling
them one by one, in the order given; answers through each item's context."""

ItemHandler = Callable[[HandlerContext, Any], Awaitable[None]]
"""Handles one record; made a :data:`BatchHandler` by :func:`one_by_one`."""


def one_by_one(handle: ItemHandler) -> BatchHandler:
    """The handler that applies ``handle`` to each item of a batch in turn; an
    :class:`InvalidMessage` it raises names the item it was handling."""

    async def handle_batch(conn: AsyncConnection, items: Sequence[BatchItem]) -> None:
        del conn  # each item's context carries it
        for item in items:
            try:
                with item.context.logged():
                    await handle(item.context, item.message)
            except InvalidMessage as invalid:
                if invalid.message_id is not None:
                    raise
                raise item.context.invalid(invalid.reason) from invalid

    return handle_batch


@dataclass(frozen=True)
class Subscription:
    """A topic, the model its messages decode into, and their handler.

    Consecutive new records of a polled batch whose subscriptions share one handler
    (the same object) go to it in one call.
    """

    topic: str
    model: type[WireMessage]
    handle: BatchHandler


@dataclass(frozen=True, slots=True)
class Decoded:
    """A record that decoded into its topic's message and carries a ``message-id``."""

    record: Record
    message: WireMessage
    message_id: str


def context_for(
    conn: AsyncConnection, item: Decoded, traceparent: str | None = None
) -> HandlerContext:
    """A fresh context for handling ``item`` in the transaction of ``conn``; what it sends
    carries ``traceparent`` (the span handling it), or else the record's own."""
    keyed: Keyed = item.message
    cause = Trace.from_headers(item.record.headers, keyed.key, traceparent)
    return HandlerContext(conn, cause, record=item.record)


async def run_handler(
    conn: AsyncConnection,
    items: Sequence[Decoded],
    handler: BatchHandler,
    traceparents: Sequence[str] | None = None,
) -> list[HandlerContext]:
    """Run ``handler`` for ``items`` in the transaction of ``conn``; their contexts, in
    order. ``traceparents`` (one per item) are those of the spans handling them."""
    parents: Sequence[str | None] = traceparents or [None] * len(items)
    batch = [
        BatchItem(
            i.record.topic,
            i.message,
            context_for(conn, i, parent),
            i.record.partition,
            i.record.offset,
            i.record.headers.get(CAUSATION_ID) or None,
        )
        for i, parent in zip(items, parents, strict=True)
    ]
    try:
        await handler(conn, batch)
    except InvalidMessage as invalid:
        if invalid.message_id is None and len(items) == 1:
            raise InvalidMessage(invalid.reason, message_id=items[0].message_id) from invalid
        raise
    return [item.context for item in batch]
