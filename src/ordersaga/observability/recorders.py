"""What records into the catalog: one service replica's view of :class:`Metrics`.

A :class:`ServiceMetrics` binds the process labels (``service``, ``replica``) once; the
recorders it hands out bind the rest of what they know up front (a consumer's group) and
keep the labelled children they use, so the hot path costs a dict lookup and an
increment, never a ``labels()`` call per message.
"""

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from prometheus_client.metrics import MetricWrapperBase

from ordersaga.observability.metrics import AGE_BANDS, Metrics

M = TypeVar("M", bound=MetricWrapperBase)


class _Children(Generic[M]):
    """The children of ``metric`` under ``fixed`` labels and a few more, kept once made."""

    def __init__(self, metric: M, *fixed: str) -> None:
        self._metric = metric
        self._fixed = fixed
        self._made: dict[Hashable, M] = {}

    def __call__(self, *more: str) -> M:
        child = self._made.get(more)
        if child is None:
            child = self._made[more] = self._metric.labels(*self._fixed, *more)
        return child


class ConsumerMetrics:
    """A consumer group's figures: batches, messages by result, transactions, lag."""

    def __init__(self, metrics: Metrics, service: str, replica: str, group: str) -> None:
        process = (service, replica)
        self._batch = metrics.consumer_batch_size.labels(*process, group)
        self._transaction = metrics.handler_transaction_duration.labels(*process, group)
        self._consumed = _Children(metrics.messages_consumed, *process)
        # Both faults made now, at 0, so rate() sees the first retry.
        self._transient = metrics.consumer_retries.labels(*process, group, "transient")
        self._unexpected = metrics.consumer_retries.labels(*process, group, "unexpected")
        self._lag = _Children(metrics.consumer_lag, *process, group)
        self._group = group

    def batch(self, size: int) -> None:
        self._batch.observe(size)

    def consumed(self, topic: str, result: str, count: int = 1) -> None:
        """``count`` messages of ``topic`` ended ``result`` (handled, duplicate, dead_lettered)."""
        self._consumed(topic, self._group, result).inc(count)

    def transaction(self, seconds: float) -> None:
        self._transaction.observe(seconds)

    def retried(self, transient: bool) -> None:
        (self._transient if transient else self._unexpected).inc()

    def lag(self, topic: str, partition: int, messages: int) -> None:
        self._lag(topic, str(partition)).set(messages)


class RelayMetrics:
    """The outbox relay's figures."""

    def __init__(self, metrics: Metrics, service: str, replica: str) -> None:
        process = (service, replica)
        self._published = metrics.relay_published.labels(*process)
        self._duration = metrics.relay_publish_duration.labels(*process)

    def published(self, count: int, seconds: float) -> None:
        """A batch of ``count`` messages was acknowledged ``seconds`` after it was handed over."""
        self._published.inc(count)
        self._duration.observe(seconds)


class SagaMetrics:
    """An orchestrator's figures of the sagas it moves."""

    def __init__(self, metrics: Metrics, service: str, replica: str) -> None:
        process = (service, replica)
        self._started = metrics.sagas_started.labels(*process)
        self._finished = _Children(metrics.sagas_finished, *process)
        self._duration = _Children(metrics.saga_duration, *process)
        self._reply = _Children(metrics.saga_reply_latency, *process)
        self._deadlines = _Children(metrics.saga_deadlines_fired, *process)
        self._compensations_sent = _Children(metrics.saga_compensations_sent, *process)
        self._compensations_acked = _Children(metrics.saga_compensations_acknowledged, *process)

    def declare(
        self, deadline_results: Iterable[str], steps: Iterable[str], compensated: Iterable[str]
    ) -> None:
        """Make the series of every deadline result, step and compensated step now, at 0, so
        that ``rate()`` and ``increase()`` see their first increase (a series that appears
        with its first increment has no earlier sample to count from)."""
        for result in deadline_results:
            self._deadlines(result)
        for step in steps:
            self._reply(step)
        for step in compensated:
            self._compensations_sent(step)
            self._compensations_acked(step)

    def started(self) -> None:
        self._started.inc()

    def finished(self, outcome: str, reason_class: str, seconds: float) -> None:
        self._finished(outcome, reason_class).inc()
        self._duration(outcome).observe(seconds)

    def replied(self, step: str, seconds: float) -> None:
        self._reply(step).observe(seconds)

    def deadline_fired(self, result: str) -> None:
        self._deadlines(result).inc()

    def compensation_sent(self, step: str) -> None:
        self._compensations_sent(step).inc()

    def compensation_acknowledged(self, step: str) -> None:
        self._compensations_acked(step).inc()


class HttpMetrics:
    """The order API's figures, by route template (never the raw path)."""

    def __init__(self, metrics: Metrics, service: str, replica: str) -> None:
        self._requests = _Children(metrics.http_requests, service, replica)
        self._duration = _Children(metrics.http_request_duration, service, replica)

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests(route, method, str(status)).inc()
        self._duration(route, method).observe(seconds)


class ServiceMetrics:
    """One replica of one service in ``metrics``: ``service`` and ``replica`` are its labels."""

    def __init__(self, metrics: Metrics, service: str, replica: str = "0") -> None:
        self.metrics = metrics
        self.service = service
        self.replica = replica
        process = (service, replica)
        metrics.replica_info.labels(*process).set(1)
        self._outbox_waiting = metrics.outbox_waiting.labels(*process)
        self._outbox_oldest = metrics.outbox_oldest_age.labels(*process)
        self._outbox_failed = metrics.outbox_failed.labels(*process)
        self._producer_restarts = metrics.producer_restarts.labels(*process)
        self._parked = metrics.sagas_parked.labels(*process)
        self._overdue = metrics.sagas_overdue.labels(*process)
        self._unfinished = _Children(metrics.sagas_unfinished, *process)

    @classmethod
    def detached(cls, service: str) -> "ServiceMetrics":
        """Figures recorded in a registry of their own that nothing serves (for tools and
        tests that run a service without exposing it)."""
        return cls(Metrics(), service)

    def consumer(self, group: str) -> ConsumerMetrics:
        return ConsumerMetrics(self.metrics, self.service, self.replica, group)

    def relay(self) -> RelayMetrics:
        return RelayMetrics(self.metrics, self.service, self.replica)

    def sagas(self) -> SagaMetrics:
        return SagaMetrics(self.metrics, self.service, self.replica)

    def http(self) -> HttpMetrics:
        return HttpMetrics(self.metrics, self.service, self.replica)

    def producer_restarted(self) -> None:
        self._producer_restarts.inc()

    def outbox(self, waiting: int, oldest_age: float, failed: int) -> None:
        """The outbox as sampled from the database."""
        self._outbox_waiting.set(waiting)
        self._outbox_oldest.set(oldest_age)
        self._outbox_failed.set(failed)

    def sagas_sampled(
        self, parked: int, overdue: int, unfinished: Mapping[tuple[str, str], int]
    ) -> None:
        """The sagas as sampled from the database: ``unfinished`` by (state, age band);
        every state and band not given is 0."""
        self._parked.set(parked)
        self._overdue.set(overdue)
        for state in ("RUNNING", "COMPENSATING", "NOTIFYING", "PARKED"):
            for band in AGE_BANDS:
                self._unfinished(state, band).set(unfinished.get((state, band), 0))
