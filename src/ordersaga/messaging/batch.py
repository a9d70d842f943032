"""A polled batch of records handled in one unit of work.

The inbox is checked and filled for the whole batch at once (a message-id seen before,
or twice in the batch, is a duplicate and skipped), the handlers run one after another
on the same connection, in the order the records were read, and everything they send is
written to the outbox in one statement. Either all of it commits or none does.

Consecutive new records whose topics share a handler go to it in one call, which lets
it read and write the rows of all of them with a few statements.

Each new record is handled in a span of its own (``process <topic>``), the child of the
span that published it: so one saga's spans form one trace whatever batches its messages
were read in. The spans of a batch last its transaction, and end failed if it does.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from opentelemetry.trace import SpanKind

from ordersaga.contracts import headers as h
from ordersaga.messaging.handler import BatchHandler, Decoded, run_handler
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.messaging.unit_of_work import Transactions
from ordersaga.observability.tracing import Traced, Tracing, messaging_attributes


@dataclass
class BatchOutcome:
    """What one committed batch did."""

    handled: int = 0
    duplicates: int = 0
    sent: list[OutgoingMessage] = field(default_factory=list)
    by_topic: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Messages by (topic, ``handled`` or ``duplicate``)."""


async def handle_batch(
    transactions: Transactions,
    items: Sequence[Decoded],
    handlers: Mapping[str, BatchHandler],
    group: str = "",
) -> BatchOutcome:
    """Handle ``items`` in one unit of work, each by the handler of its topic; raises
    (and rolls back everything) if any fails. ``group`` is the consumer's, for the spans."""
    outcome = BatchOutcome()
    spans: list[Traced] = []
    try:
        async with transactions.begin() as work:
            new = await work.record_new([(i.message_id, i.record.topic) for i in items])
            fresh: list[Decoded] = []
            for item in items:
                if item.message_id not in new:
                    outcome.duplicates += 1
                    outcome.by_topic[item.record.topic, "duplicate"] += 1
                    continue
                new.discard(item.message_id)  # a second copy later in the batch is a duplicate
                outcome.by_topic[item.record.topic, "handled"] += 1
                fresh.append(item)
            spans = [_processing(transactions.tracing, i, group, len(items)) for i in fresh]
            parents = {id(i): s.traceparent for i, s in zip(fresh, spans, strict=True)}
            for handler, run in groupby(fresh, key=lambda i: handlers[i.record.topic]):
                batch = list(run)
                contexts = await run_handler(
                    work.conn, batch, handler, [parents[id(i)] for i in batch]
                )
                for context in contexts:
                    outcome.sent += context.outgoing
                outcome.handled += len(contexts)
            work.send_all(outcome.sent)
    except BaseException as error:
        for span in spans:
            span.end(error)
        raise
    for span in spans:
        span.end()
    return outcome


def _processing(tracing: Tracing, item: Decoded, group: str, batch_size: int) -> Traced:
    record = item.record
    return tracing.start(
        f"process {record.topic}",
        SpanKind.CONSUMER,
        record.headers.get(h.TRACEPARENT),
        lambda: messaging_attributes(
            record.topic,
            record.headers,
            record.key,
            {
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": group or None,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.batch.message_count": batch_size,
            },
        ),
    )
