"""The metric catalog: every Prometheus metric an ordersaga process exposes.

One :class:`Metrics` per process, on its own registry (never the library's global one),
so the embedded system — four services in one process — registers each metric once and
tells the services apart by the ``service`` label. Every ``ordersaga_`` metric carries
``service`` (order, orchestrator, stock, payment) and ``replica`` (its index, 0 when
embedded); the registry also holds the process collector
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``...), once per process.

Conventions (checked by tests/unit/test_metrics_catalog.py): the ``ordersaga_`` prefix,
base units (seconds), counters end in ``_total``, and labels are bounded — never an
order, saga or message id. The values a label takes are listed beside it here.

Gauges marked *database* are sampled from the service's database every
``ORDERSAGA_METRICS_INTERVAL`` seconds: every replica of a service reports the same
figure, so aggregate them with ``max``, not ``sum``.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

PREFIX = "ordersaga_"

PROCESS = ("service", "replica")
"""The labels every ordersaga metric carries, whose values come from the process."""

# Label values, bounded sets.
OUTCOMES = ("completed", "cancelled")
"""``outcome`` of a finished saga."""
REASON_CLASSES = (
    "none",
    "stock_refused",
    "stock_timeout",
    "payment_refused",
    "payment_timeout",
    "other",
)
"""``reason_class`` of a finished saga: ``none`` when it completed, else the party whose
answer (``refused``) or silence (``timeout``) cancelled it (``{party}_refused``,
``{party}_timeout``), ``other`` for any other reason."""
DEADLINE_RESULTS = ("timed_out", "resent", "parked", "failed")
"""``result`` of a fired deadline: a silent step given up on (compensation starts), a
compensation / retriable command / outcome sent again, the saga parked, or the deadline
transition failed (an error; the saga is tried again, parked after repeated failures)."""
CONSUMED_RESULTS = ("handled", "duplicate", "dead_lettered")
"""``result`` of a consumed message."""
FAULTS = ("transient", "unexpected")
"""``fault`` of a failed attempt: a fault of the surroundings, or anything else (a bug)."""
AGE_BANDS = ("under_1m", "1m_5m", "5m_1h", "over_1h")
"""``age_band`` of an unfinished saga, by the time since it started."""
AGE_BAND_LIMITS = (60.0, 300.0, 3600.0)
"""The upper limits, in seconds, of all but the last age band."""
SAGA_STATES = ("RUNNING", "COMPENSATING", "NOTIFYING", "PARKED")
"""``state`` of an unfinished saga."""

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds: a database transaction, a publish, an HTTP request."""
REPLY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Seconds from a step's command to its reply (up to the default 30 s deadline and past)."""
SAGA_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Seconds from a saga's start to its end (compensations after timeouts take minutes)."""
BATCH_BUCKETS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0)
"""Messages per polled batch (at most the consumer's ``max_records``, 500)."""


class Metrics:
    """Every ordersaga metric, registered in ``registry`` (a new one by default).

    Create one per process, in the wiring, and pass it to what records.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)

        self.replica_info = Gauge(
            "ordersaga_replica_info",
            "1 for each service replica this process runs.",
            PROCESS,
            registry=r,
        )

        # Sagas (the orchestrator).
        self.sagas_started = Counter(
            "ordersaga_sagas_started_total", "Sagas started.", PROCESS, registry=r
        )
        self.sagas_finished = Counter(
            "ordersaga_sagas_finished_total",
            "Sagas finished (their outcome acknowledged), by outcome and reason class.",
            (*PROCESS, "outcome", "reason_class"),
            registry=r,
        )
        self.saga_duration = Histogram(
            "ordersaga_saga_duration_seconds",
            "Seconds from a saga's start to its end, by outcome.",
            (*PROCESS, "outcome"),
            buckets=SAGA_BUCKETS,
            registry=r,
        )
        self.saga_reply_latency = Histogram(
            "ordersaga_saga_reply_latency_seconds",
            "Seconds from a step's command to the participant's reply, by step.",
            (*PROCESS, "step"),
            buckets=REPLY_BUCKETS,
            registry=r,
        )
        self.saga_deadlines_fired = Counter(
            "ordersaga_saga_deadlines_fired_total",
            "Saga deadlines that passed and were acted on, by what was done.",
            (*PROCESS, "result"),
            registry=r,
        )
        self.saga_compensations_sent = Counter(
            "ordersaga_saga_compensations_sent_total",
            "Compensations sent (each send, re-sends included), by the step undone.",
            (*PROCESS, "step"),
            registry=r,
        )
        self.saga_compensations_acknowledged = Counter(
            "ordersaga_saga_compensations_acknowledged_total",
            "Compensations acknowledged by their participant, by the step undone.",
            (*PROCESS, "step"),
            registry=r,
        )
        self.sagas_parked = Gauge(
            "ordersaga_sagas_parked",
            "Sagas PARKED, waiting for an operator (database).",
            PROCESS,
            registry=r,
        )
        self.sagas_unfinished = Gauge(
            "ordersaga_sagas_unfinished",
            "Sagas not finished, by state and by the time since they started (database).",
            (*PROCESS, "state", "age_band"),
            registry=r,
        )
        self.sagas_overdue = Gauge(
            "ordersaga_sagas_overdue",
            "Sagas whose deadline has passed and has not been acted on yet (database).",
            PROCESS,
            registry=r,
        )

        # Consuming (every service).
        self.messages_consumed = Counter(
            "ordersaga_messages_consumed_total",
            "Messages consumed, by topic, consumer group and result.",
            (*PROCESS, "topic", "group", "result"),
            registry=r,
        )
        self.consumer_batch_size = Histogram(
            "ordersaga_consumer_batch_size",
            "Messages per batch polled by a consumer group.",
            (*PROCESS, "group"),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.handler_transaction_duration = Histogram(
            "ordersaga_handler_transaction_duration_seconds",
            "Seconds of the transaction that handles one batch (inbox, handlers, outbox, "
            "commit), by consumer group.",
            (*PROCESS, "group"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_retries = Counter(
            "ordersaga_consumer_retries_total",
            "Failed attempts to poll, handle or dead-letter that are retried, by fault.",
            (*PROCESS, "group", "fault"),
            registry=r,
        )
        self.consumer_lag = Gauge(
            "ordersaga_consumer_lag",
            "Messages of a partition not yet consumed by the group (its end offset known to "
            "the consumer minus its position), per partition it holds.",
            (*PROCESS, "group", "topic", "partition"),
            registry=r,
        )

        # The outbox and its relay (every service).
        self.outbox_waiting = Gauge(
            "ordersaga_outbox_rows_waiting",
            "Outbox rows written and not yet published (database).",
            PROCESS,
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "ordersaga_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet published; 0 when none waits (database).",
            PROCESS,
            registry=r,
        )
        self.outbox_failed = Gauge(
            "ordersaga_outbox_rows_failed",
            "Messages the broker refused for good, kept in outbox_failed (database).",
            PROCESS,
            registry=r,
        )
        self.relay_published = Counter(
            "ordersaga_relay_published_total",
            "Outbox messages published and acknowledged by the broker.",
            PROCESS,
            registry=r,
        )
        self.relay_publish_duration = Histogram(
            "ordersaga_relay_publish_duration_seconds",
            "Seconds from handing a batch of outbox rows to the producer to the broker's "
            "acknowledgement of all of it.",
            PROCESS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.producer_restarts = Counter(
            "ordersaga_producer_restarts_total",
            "Kafka producers closed and replaced after they were left unusable.",
            PROCESS,
            registry=r,
        )

        # The order API.
        self.http_requests = Counter(
            "ordersaga_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            (*PROCESS, "route", "method", "status"),
            registry=r,
        )
        self.http_request_duration = Histogram(
            "ordersaga_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer, by route template and method.",
            (*PROCESS, "route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )


def age_band(seconds: float) -> str:
    """The ``age_band`` of a saga started ``seconds`` ago."""
    for band, limit in zip(AGE_BANDS, AGE_BAND_LIMITS, strict=False):
        if seconds < limit:
            return band
    return AGE_BANDS[-1]
