"""Turning a message model into an outgoing record with the contract's headers."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from ordersaga.contracts import headers as h
from ordersaga.contracts.codec import encode
from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.observability.tracing import new_traceparent


@dataclass(frozen=True, slots=True)
class Trace:
    """What a message passes on to the messages it causes."""

    message_id: str
    saga_id: str
    traceparent: str

    @classmethod
    def from_headers(
        cls,
        headers: Mapping[str, str] | None,
        fallback_saga: UUID | str,
        traceparent: str | None = None,
    ) -> "Trace":
        """The trace in ``headers``; a message without one starts saga ``fallback_saga``
        (its key). ``traceparent``, when given, replaces the headers' (the span handling
        the message)."""
        headers = headers or {}
        return cls(
            message_id=headers.get(h.MESSAGE_ID, ""),
            saga_id=headers.get(h.SAGA_ID) or str(fallback_saga),
            traceparent=traceparent or headers.get(h.TRACEPARENT) or new_traceparent(),
        )


def envelope(
    topic: str,
    message: WireMessage,
    cause: Trace | None = None,
    *,
    message_id: str | None = None,
) -> OutgoingMessage:
    """The record for ``message`` on ``topic``, under the message's key.

    ``cause`` is the message (or span) this one answers or follows from; without it the
    message starts a saga of its own (the saga id is its key) in a trace of its own.
    ``message_id`` is the id the sender recorded for it (default: a new one).
    """
    saga_id = cause.saga_id if cause else message.key
    return OutgoingMessage(
        topic=topic,
        key=message.key,
        value=encode(message),
        headers={
            h.MESSAGE_ID: message_id or str(uuid4()),
            h.MESSAGE_TYPE: message.message_type,
            h.SAGA_ID: saga_id,
            h.CAUSATION_ID: cause.message_id if cause else "",
            h.TRACEPARENT: cause.traceparent if cause else new_traceparent(),
            h.SENT_AT: datetime.now(UTC).isoformat(),
            h.SCHEMA_VERSION: h.CURRENT_SCHEMA_VERSION,
        },
    )
