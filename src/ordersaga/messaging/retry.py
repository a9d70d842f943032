"""Retrying one piece of work for as long as it fails, counted and logged without flooding."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ordersaga.messaging.backoff import Backoff
from ordersaga.messaging.transient import is_transient


@dataclass
class RetryStats:
    """Failed attempts, while they last and in total."""

    retries: int = 0
    """Attempts that failed and were retried."""
    unexpected: int = 0
    """Of those, failures that were no known fault of the surroundings (likely a bug)."""
    failing_since: float | None = None
    """When (monotonic clock) the work now being retried first failed; None when none is."""


class Retrying:
    """Capped exponential backoff between attempts, and a report of the failures.

    The first failure is logged with the error: as a warning when it is a fault of the
    surroundings (:func:`~ordersaga.messaging.transient.is_transient`), as an error with
    its traceback otherwise. While failures last, one line every ``report_every`` seconds
    (or when the error changes kind) says for how long and how many attempts; one line
    says when the work went through at last.
    """

    def __init__(
        self,
        what: str,
        stats: RetryStats,
        log: logging.Logger,
        *,
        report_every: float = 60.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        counted: Callable[[bool], None] | None = None,
    ) -> None:
        self._what = what
        self._stats = stats
        self._log = log
        self._report_every = report_every
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._counted = counted
        """Told of each failure: True for a fault of the surroundings (a metric)."""
        self._attempts = 0
        self._since = 0.0
        self._reported_at = 0.0
        self._reported_kind: type[BaseException] | None = None

    async def failed(self, error: Exception) -> None:
        """Count and maybe report ``error``, then wait before the next attempt."""
        now = self._clock()
        transient = is_transient(error)
        self._stats.retries += 1
        self._stats.unexpected += not transient
        if self._counted is not None:
            self._counted(transient)
        if self._attempts == 0:
            self._since = now
            if self._stats.failing_since is None:
                self._stats.failing_since = now
        self._attempts += 1
        if self._due(now, type(error)):
            self._report(error, transient, now)
        await self._backoff.sleep()

    def succeeded(self) -> None:
        """The work went through: say so if it had failed, and start afresh."""
        if self._attempts:
            self._log.warning(
                "%s succeeded after %d failed attempts over %.1fs",
                self._what,
                self._attempts,
                self._clock() - self._since,
            )
        self._stats.failing_since = None
        self._attempts = 0
        self._reported_kind = None
        self._backoff.reset()

    def _due(self, now: float, kind: type[BaseException]) -> bool:
        return (
            self._attempts == 1
            or kind is not self._reported_kind
            or now - self._reported_at >= self._report_every
        )

    def _report(self, error: Exception, transient: bool, now: float) -> None:
        self._reported_at, self._reported_kind = now, type(error)
        args: tuple[object, ...]
        if self._attempts == 1:
            message, args = "%s failed (%r); retrying until it succeeds", (self._what, error)
        else:
            message = "%s still failing after %d attempts over %.1fs (%r); retrying"
            args = (self._what, self._attempts, now - self._since, error)
        if transient:
            self._log.warning(message, *args)
        else:
            self._log.error(
                message + " - not a known fault of the surroundings", *args, exc_info=error
            )
