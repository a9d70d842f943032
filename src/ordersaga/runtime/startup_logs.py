"""Keeping aiokafka's normal warm-up out of a replica's log.

While a replica waits for Kafka, aiokafka logs an ERROR for every failed connection
attempt (about three a second); while a new consumer group settles, it logs an ERROR
for every "coordinator not available" answer. Both are retried by aiokafka itself and
are what a healthy start looks like, so they are dropped: during the wait for Kafka the
first, for ``warm_up`` seconds after the replica starts the second. The replica says
once what it waits for instead. Every other record, and these same ones later on (a
broker lost while serving), passes unchanged.
"""

import logging
import time
from collections.abc import Callable

CONNECTION_NOISE = ("Unable connect to", "Unable to update metadata", "Unable to request metadata")
WARM_UP_NOISE = (
    "CoordinatorNotAvailable",
    "NotCoordinatorForGroup",
    "CoordinatorLoadInProgress",
    "Group Coordinator Request failed",
    "FindCoordinator Request failed",
    "not found in cluster metadata",
    "NotLeaderForPartition",
    "LeaderNotAvailable",
    "UnknownTopicOrPartition",
)


JOINED = "Successfully synced group"
"""What aiokafka says once a consumer has joined its group and has its partitions."""


class StartupNoise(logging.Filter):
    """A handler filter; :attr:`waiting_for_kafka` is set while the replica waits."""

    def __init__(self, warm_up: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.waiting_for_kafka = False
        self._clock = clock
        self._warm_until = clock() + warm_up

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        if record.levelno < logging.WARNING:
            # Of a group join's dozen INFO lines, only the one that says it is done.
            return record.getMessage().startswith(JOINED)
        text = record.getMessage()
        if self.waiting_for_kafka and any(n in text for n in CONNECTION_NOISE):
            return False
        warming = self._clock() < self._warm_until
        return not (warming and any(n in text for n in WARM_UP_NOISE))


def quiet_start(warm_up: float = 30.0) -> StartupNoise:
    """Install a :class:`StartupNoise` on the root logger's handlers; returns it. aiokafka's
    INFO lines (a dozen per consumer group join) are left out as well, but for the one
    that says a join is done."""
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("aiokafka.consumer.group_coordinator").setLevel(logging.INFO)
    noise = StartupNoise(warm_up)
    for handler in logging.getLogger().handlers:
        handler.addFilter(noise)
    return noise
