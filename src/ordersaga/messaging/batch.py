"""A polled batch of records handled in one database transaction.

The inbox is checked and filled for the whole batch at once (a message-id seen before,
or twice in the batch, is a duplicate and skipped), the handlers run one after another
on the same connection, in the order the records were read, and everything they send is
written to the outbox in one statement. Either all of it commits or none does.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.handler import Decoded, Handler, run_handler
from ordersaga.messaging.inbox import record_new
from ordersaga.messaging.outbox import write_outbox
from ordersaga.messaging.port import OutgoingMessage


@dataclass
class BatchOutcome:
    """What one committed batch did."""

    handled: int = 0
    duplicates: int = 0
    sent: list[OutgoingMessage] = field(default_factory=list)


async def handle_batch(
    engine: AsyncEngine,
    inbox: Table,
    outbox: Table,
    items: Sequence[Decoded],
    handlers: Mapping[str, Handler],
) -> BatchOutcome:
    """Handle ``items`` in one transaction; raises (and rolls back everything) if any fails."""
    outcome = BatchOutcome()
    async with engine.begin() as conn:
        new = await record_new(conn, inbox, [(i.message_id, i.record.topic) for i in items])
        for item in items:
            if item.message_id not in new:
                outcome.duplicates += 1
                continue
            new.discard(item.message_id)  # a second copy later in the batch is a duplicate
            context = await run_handler(conn, item, handlers[item.record.topic])
            outcome.sent += context.outgoing
            outcome.handled += 1
        await write_outbox(conn, outbox, outcome.sent)
    return outcome
