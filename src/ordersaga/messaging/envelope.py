"""Turning a message model into an outgoing record with the contract's headers."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from ordersaga.contracts import headers as h
from ordersaga.contracts.codec import encode
from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.port import OutgoingMessage


@dataclass(frozen=True, slots=True)
class Trace:
    """What a message passes on to the messages it causes."""

    message_id: str
    saga_id: str
    traceparent: str

    @classmethod
    def from_headers(cls, headers: dict[str, str] | None, fallback_saga: UUID) -> "Trace":
        headers = headers or {}
        saga_id = headers.get(h.SAGA_ID) or str(fallback_saga)
        return cls(
            message_id=headers.get(h.MESSAGE_ID, ""),
            saga_id=saga_id,
            traceparent=headers.get(h.TRACEPARENT) or new_traceparent(UUID(saga_id)),
        )


def new_traceparent(saga_id: UUID) -> str:
    """A W3C traceparent whose trace id is the saga id, so one saga is one trace."""
    return f"00-{saga_id.hex}-{uuid4().hex[:16]}-01"


def envelope(topic: str, message: WireMessage, cause: Trace | None = None) -> OutgoingMessage:
    """The record for ``message`` on ``topic``, keyed by its orderID.

    ``cause`` is the message this one answers or follows from; without it the message
    starts a saga of its own (the saga id is the order id).
    """
    saga_id = cause.saga_id if cause else str(message.orderID)
    return OutgoingMessage(
        topic=topic,
        key=message.key,
        value=encode(message),
        headers={
            h.MESSAGE_ID: str(uuid4()),
            h.MESSAGE_TYPE: message.message_type,
            h.SAGA_ID: saga_id,
            h.CAUSATION_ID: cause.message_id if cause else "",
            h.TRACEPARENT: cause.traceparent if cause else new_traceparent(UUID(saga_id)),
            h.SENT_AT: datetime.now(UTC).isoformat(),
            h.SCHEMA_VERSION: h.CURRENT_SCHEMA_VERSION,
        },
    )
