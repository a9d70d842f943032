"""Offsets of handled records, committed to the broker at most once per interval.

An offset commit is a request to the broker and a write to its offsets log: committed
after every batch, it is paid per message when batches hold one message (a lightly
loaded system), and costs the broker more than the produce request of the message
itself. Committed offsets only bound what a new owner of the partition reads again, and
the inbox turns what is read again into a counted no-op, so committing them a moment
later changes no effect: a consumer that crashes, or loses a partition in a rebalance,
before its commit has those records delivered again.

Offsets are still committed only after the transaction that handled their records, and
a consumer that stops cleanly commits what it holds before it leaves its group.
"""

import time
from collections.abc import Callable, Mapping, Sequence

from ordersaga.messaging.port import Consumer, Record, TopicPartition

DEFAULT_COMMIT_EVERY = 0.5
"""Seconds the offset of a handled record may wait for its commit (0: at once)."""


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the last of ``records``."""
    return {record.topic_partition: record.offset + 1 for record in records}


class PendingOffsets:
    """The next offsets to commit, per partition, and since when the oldest has waited."""

    def __init__(
        self, every: float = DEFAULT_COMMIT_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every = every
        self._clock = clock
        self._offsets: dict[TopicPartition, int] = {}
        self._since: float | None = None

    def __bool__(self) -> bool:
        return bool(self._offsets)

    def add(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets whose records' transaction has committed."""
        if offsets and self._since is None:
            self._since = self._clock()
        self._offsets.update(offsets)

    def wait(self, longest: float) -> float:
        """How long a poll may wait before these are due, at most ``longest`` seconds."""
        if self._since is None:
            return longest
        return max(0.0, min(longest, self._since + self._every - self._clock()))

    def due(self) -> bool:
        return self._since is not None and self._clock() - self._since >= self._every

    async def commit(self, consumer: Consumer) -> None:
        """Commit them all now (a clean stop, a poll that found nothing more)."""
        if not self._offsets:
            return
        offsets, self._offsets, self._since = self._offsets, {}, None
        await consumer.commit(offsets)

    async def handled(
        self, consumer: Consumer, records: Sequence[Record], *, at_once: bool = False
    ) -> None:
        """``records``' transaction has committed: their offsets are pending, and
        committed now if the oldest pending one is due (or ``at_once``)."""
        self.add(next_offsets(records))
        if at_once or self.due():
            await self.commit(consumer)

    def drop(self) -> None:
        """Forget them: the records will be delivered again (a crash, a lost consumer)."""
        self._offsets, self._since = {}, None
