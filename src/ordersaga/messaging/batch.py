"""A polled batch of records handled in one database transaction.

The inbox is checked and filled for the whole batch at once (a message-id seen before,
or twice in the batch, is a duplicate and skipped), the handlers run one after another
on the same connection, in the order the records were read, and everything they send is
written to the outbox in one statement. Either all of it commits or none does.

Consecutive new records whose topics share a batch handler go to it in one call, which
lets it read and write the rows of all of them with a few statements.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.handler import (
    BatchHandler,
    Decoded,
    Handler,
    HandlerContext,
    run_batch_handler,
    run_handler,
)
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
    batch_handlers: Mapping[str, BatchHandler] | None = None,
) -> BatchOutcome:
    """Handle ``items`` in one transaction; raises (and rolls back everything) if any fails.

    A topic in ``batch_handlers`` is handled by its batch handler, with the consecutive
    new records that share it; any other by its handler in ``handlers``.
    """
    outcome = BatchOutcome()
    batched = batch_handlers or {}
    async with engine.begin() as conn:
        new = await record_new(conn, inbox, [(i.message_id, i.record.topic) for i in items])
        fresh: list[Decoded] = []
        for item in items:
            if item.message_id not in new:
                outcome.duplicates += 1
                continue
            new.discard(item.message_id)  # a second copy later in the batch is a duplicate
            fresh.append(item)
        for handler, run in groupby(fresh, key=lambda i: batched.get(i.record.topic)):
            contexts: list[HandlerContext]
            if handler is None:
                contexts = [await run_handler(conn, i, handlers[i.record.topic]) for i in run]
            else:
                contexts = await run_batch_handler(conn, list(run), handler)
            for context in contexts:
                outcome.sent += context.outgoing
            outcome.handled += len(contexts)
        await write_outbox(conn, outbox, outcome.sent)
    return outcome
