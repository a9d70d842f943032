"""A unit of work: one transaction of a service, its outbox, and the relay woken after it.

Whatever changes a service's data and sends messages does both in one of these: the
consumer loop (with the inbox), the deadline timer, the order API, the reconciliation
loop, an operator's command. What it sends is written to the outbox in the same
transaction, never published directly; once the transaction has committed, and only
if something was sent, the outbox relay is woken so that it publishes without waiting
for its next poll.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordersaga.contracts.messages import WireMessage
from ordersaga.messaging.envelope import Trace, envelope
from ordersaga.messaging.inbox import record_new
from ordersaga.messaging.outbox import write_outbox
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.observability.tracing import NO_TRACING, Tracing


def _asleep() -> None:
    """No relay to wake (a command-line tool: the service's relay finds it on its poll)."""


@dataclass
class UnitOfWork:
    """One open transaction: its connection and what it will send if it commits."""

    conn: AsyncConnection
    inbox: Table | None = None
    outgoing: list[OutgoingMessage] = field(default_factory=list)

    def send(
        self,
        topic: str,
        message: WireMessage,
        cause: Trace | None = None,
        *,
        message_id: str | None = None,
    ) -> None:
        """Send ``message`` on ``topic`` if, and only if, this transaction commits."""
        self.outgoing.append(envelope(topic, message, cause, message_id=message_id))

    def send_all(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send records already enveloped (a handler's), if this transaction commits."""
        self.outgoing += messages

    async def record_new(self, messages: Sequence[tuple[str, str]]) -> set[str]:
        """Record ``(message_id, topic)`` pairs in the inbox; the ids not handled before."""
        if self.inbox is None:
            raise RuntimeError("this unit of work has no inbox")
        return await record_new(self.conn, self.inbox, messages)


@dataclass(frozen=True)
class Transactions:
    """Opens units of work on one service's database, outbox (and inbox) and relay."""

    engine: AsyncEngine
    outbox: Table
    inbox: Table | None = None
    wake_relay: Callable[[], None] = _asleep
    tracing: Tracing = NO_TRACING
    """Where the spans of the work done in these units go (the replica's)."""

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work; commits (outbox included) when the block ends without raising,
        then wakes the relay if anything was sent."""
        async with self.engine.begin() as conn:
            work = UnitOfWork(conn, self.inbox)
            yield work
            await write_outbox(conn, self.outbox, work.outgoing)
        if work.outgoing:
            self.wake_relay()
