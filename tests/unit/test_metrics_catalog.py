"""The metric catalog keeps Prometheus' conventions: prefix, units, counters, bounded labels."""

import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from ordersaga.observability.metrics import (
    AGE_BANDS,
    PREFIX,
    PROCESS,
    Metrics,
    age_band,
)


def _catalog() -> list[MetricWrapperBase]:
    metrics = Metrics()
    return [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]


def _name(metric: MetricWrapperBase) -> str:
    [family] = metric.describe()
    return family.name + ("_total" if family.type == "counter" else "")


def test_every_metric_is_prefixed_and_labelled_with_its_process() -> None:
    for metric in _catalog():
        assert _name(metric).startswith(PREFIX), _name(metric)
        assert metric._labelnames[: len(PROCESS)] == PROCESS, _name(metric)


def test_counters_end_in_total_and_nothing_else_does() -> None:
    for metric in _catalog():
        [family] = metric.describe()
        assert (family.type == "counter") == _name(metric).endswith("_total"), _name(metric)


def test_durations_and_ages_are_histograms_or_gauges_in_seconds() -> None:
    timed = [
        m
        for m in _catalog()
        if {"duration", "latency", "age", "time"} & set(_name(m).split("_"))
    ]
    assert len(timed) >= 6
    for metric in timed:
        assert _name(metric).endswith("_seconds"), _name(metric)
    for metric in _catalog():
        [family] = metric.describe()
        if family.type == "histogram" and "batch_size" not in family.name:
            assert family.name.endswith("_seconds"), family.name


@pytest.mark.parametrize("word", ["id", "uuid", "key", "order", "saga", "message", "user"])
def test_no_label_names_an_unbounded_value(word: str) -> None:
    for metric in _catalog():
        for label in metric._labelnames:
            assert word not in label.split("_"), f"{_name(metric)} has label {label}"


def test_the_catalog_holds_what_an_operator_watches() -> None:
    names = {_name(m) for m in _catalog()}
    assert {
        "ordersaga_sagas_started_total",
        "ordersaga_sagas_finished_total",
        "ordersaga_saga_duration_seconds",
        "ordersaga_saga_reply_latency_seconds",
        "ordersaga_saga_deadlines_fired_total",
        "ordersaga_saga_compensations_sent_total",
        "ordersaga_saga_compensations_acknowledged_total",
        "ordersaga_sagas_parked",
        "ordersaga_sagas_unfinished",
        "ordersaga_messages_consumed_total",
        "ordersaga_consumer_batch_size",
        "ordersaga_handler_transaction_duration_seconds",
        "ordersaga_outbox_rows_waiting",
        "ordersaga_outbox_oldest_age_seconds",
        "ordersaga_relay_publish_duration_seconds",
        "ordersaga_producer_restarts_total",
        "ordersaga_consumer_lag",
        "ordersaga_http_requests_total",
        "ordersaga_http_request_duration_seconds",
    } <= names


def test_each_process_has_its_own_registry_with_cpu_and_memory() -> None:
    one, two = Metrics(), Metrics()
    one.sagas_started.labels("orchestrator", "0").inc()
    text = generate_latest(one.registry).decode()
    assert 'ordersaga_sagas_started_total{replica="0",service="orchestrator"} 1.0' in text
    assert "process_cpu_seconds_total" in text
    assert "process_resident_memory_bytes" in text
    assert "ordersaga_sagas_started_total{" not in generate_latest(two.registry).decode()


@pytest.mark.parametrize(
    ("seconds", "band"),
    [(0.0, "under_1m"), (59.9, "under_1m"), (60.0, "1m_5m"), (299.0, "1m_5m"),
     (300.0, "5m_1h"), (3599.0, "5m_1h"), (3600.0, "over_1h"), (86400.0, "over_1h")],
)  # fmt: skip
def test_age_bands(seconds: float, band: str) -> None:
    assert age_band(seconds) == band
    assert band in AGE_BANDS
