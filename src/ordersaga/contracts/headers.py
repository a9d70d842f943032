"""Message headers of the wire contract."""

from typing import Final

MESSAGE_ID: Final = "message-id"
MESSAGE_TYPE: Final = "message-type"
SAGA_ID: Final = "saga-id"
CAUSATION_ID: Final = "causation-id"
TRACEPARENT: Final = "traceparent"
SENT_AT: Final = "sent-at"
SCHEMA_VERSION: Final = "schema-version"

CURRENT_SCHEMA_VERSION: Final = "1"
"""The ``schema-version`` this code writes, and the newest it reads.

A version says what a reader needs to understand the message. Adding a field readers
may ignore does not change it (consumers ignore fields they do not know); a change that
a reader of the previous version would get wrong (a new meaning, a new status value, a
field it must not ignore) takes the next version. A consumer reads every version up to
its own; a message without the header is of version 1, as the original demo's are.
"""

# Added on dead letters.
DLQ_ERROR: Final = "dlq-error"
DLQ_SOURCE_TOPIC: Final = "dlq-source-topic"
DLQ_SOURCE_PARTITION: Final = "dlq-source-partition"
DLQ_SOURCE_OFFSET: Final = "dlq-source-offset"
DLQ_CONSUMER: Final = "dlq-consumer"
DLQ_REPLAYED_FROM: Final = "dlq-replayed-from"
"""On a replayed dead letter: the DLQ record it was replayed from (topic/partition/offset)."""
