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

# Added on dead letters.
DLQ_ERROR: Final = "dlq-error"
DLQ_SOURCE_TOPIC: Final = "dlq-source-topic"
DLQ_SOURCE_PARTITION: Final = "dlq-source-partition"
DLQ_SOURCE_OFFSET: Final = "dlq-source-offset"
DLQ_CONSUMER: Final = "dlq-consumer"
DLQ_REPLAYED_FROM: Final = "dlq-replayed-from"
"""On a replayed dead letter: the DLQ record it was replayed from (topic/partition/offset)."""
