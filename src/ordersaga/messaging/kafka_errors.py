"""What a failed Kafka send means for what to do next: the one place that decides.

Three kinds of failure:

- **permanent for the message**: the broker (or the client, before sending) refuses
  this message for a reason of its own that no retry cures: the service may not write
  to the topic, the topic name is invalid, the message or its batch is too large, the
  broker cannot store its format. The relay moves such a message out of the outbox
  (``outbox_failed``) instead of retrying it for ever in front of the others.
- **fatal for the producer instance**: the idempotent producer's sequence state is
  broken or its id was fenced or forgotten (OutOfOrderSequenceNumber, UnknownProducerId,
  InvalidProducerEpoch / ProducerFenced, a lost transactional id authorisation, or the
  producer found closed). aiokafka stops its sender for good; only a new producer
  (a new producer id) can publish again.
- **everything else** (a broker away, no leader, not enough in-sync replicas, a
  timeout...): transient; the same batch is sent again by the same producer.
"""

from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidProducerEpoch,
    InvalidTopicError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownProducerId,
    UnsupportedForMessageFormatError,
)

PERMANENT_FOR_THE_MESSAGE: tuple[type[BaseException], ...] = (
    TopicAuthorizationFailedError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)

FATAL_FOR_THE_PRODUCER: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    ProducerClosed,
)


def is_permanent(error: BaseException) -> bool:
    """True when ``error`` condemns its message, whichever producer sends it."""
    return isinstance(error, PERMANENT_FOR_THE_MESSAGE)


def is_fatal_for_producer(error: BaseException) -> bool:
    """True when the producer that raised ``error`` can publish nothing any more."""
    return isinstance(error, FATAL_FOR_THE_PRODUCER)


def describe(error: BaseException) -> str:
    """The error as an operator reads it: its type and message."""
    name, text = type(error).__name__, str(error)
    if name in text:  # aiokafka's broker errors name themselves: "[Error 10] ...Error: ..."
        return text
    return f"{name}: {text}" if text else name
