"""A polled batch of records handled in one unit of work.

The inbox is checked and filled for the whole batch at once (a message-id seen before,
or twice in the batch, is a duplicate and skipped), the handlers run one after another
on the same connection, in the order the records were read, and everything they send is
written to the outbox in one statement. Either all of it commits or none does.

Consecutive new records whose topics share a handler go to it in one call, which lets
it read and write the rows of all of them with a few statements.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from ordersaga.messaging.handler import BatchHandler, Decoded, run_handler
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.messaging.unit_of_work import Transactions


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
) -> BatchOutcome:
    """Handle ``items`` in one unit of work, each by the handler of its topic; raises
    (and rolls back everything) if any fails."""
    outcome = BatchOutcome()
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
        for handler, run in groupby(fresh, key=lambda i: handlers[i.record.topic]):
            contexts = await run_handler(work.conn, list(run), handler)
            for context in contexts:
                outcome.sent += context.outgoing
            outcome.handled += len(contexts)
        work.send_all(outcome.sent)
    return outcome
