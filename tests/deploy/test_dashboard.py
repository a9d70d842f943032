"""The Grafana dashboard: the shape Grafana imports, a panel for each thing an operator
watches, and every query accepted by a real Prometheus."""

import re
from collections.abc import Iterator

import pytest

from ordersaga.observability.metrics import Metrics
from tests.deploy.prometheus import (
    Prometheus,
    alert_queries,
    dashboard,
    dashboard_queries,
    panels,
    substitute,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A Prometheus that scrapes nothing: it parses and runs the queries all the same."""
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), "global: {}\n")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_dashboard_takes_its_prometheus_from_a_variable() -> None:
    board = dashboard()
    assert board["uid"] == "ordersaga" and board["title"] == "ordersaga"
    assert board["schemaVersion"] >= 36  # Grafana 9.0 and later import it as it is
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["service"]["datasource"] == DATASOURCE
    for panel in panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_have_their_own_ids_and_fit_the_grid() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize(
    "needle",
    [
        "ordersaga_sagas_finished_total",  # throughput and outcomes
        "histogram_quantile(0.99, sum by (le) (rate(ordersaga_saga_duration_seconds_bucket",
        "sum by (le, step) (rate(ordersaga_saga_reply_latency_seconds_bucket",
        "ordersaga_consumer_lag",
        "ordersaga_outbox_rows_waiting",
        "ordersaga_outbox_oldest_age_seconds",
        "ordersaga_sagas_parked",
        'ordersaga_messages_consumed_total{result="dead_lettered"}',
        "rate(process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ],
)
def test_a_panel_shows(needle: str) -> None:
    exprs = [target["expr"] for panel in panels(dashboard()) for target in panel["targets"]]
    assert any(needle in expr for expr in exprs), f"no panel queries {needle}"


def test_prometheus_accepts_every_query_of_the_dashboard_and_the_alerts(
    prometheus: Prometheus,
) -> None:
    queries = {**dashboard_queries(), **alert_queries()}
    refused = {
        name: answer
        for name, expr in queries.items()
        if (answer := prometheus.query(expr))["status"] != "success"
    }
    assert not refused, refused
    assert len(queries) > 30


def test_a_query_prometheus_refuses_is_reported(prometheus: Prometheus) -> None:
    answer = prometheus.query("sum by (le) (rate(ordersaga_sagas_started_total[$__rate]))")
    assert answer["status"] == "error" and answer["errorType"] == "bad_data"


def test_a_variable_without_a_test_value_is_named() -> None:
    with pytest.raises(AssertionError, match=r"\$tenant"):
        substitute('up{tenant="$tenant"}')
    assert substitute('rate(x[$__rate_interval]) and y{service=~"${service}"}') == (
        'rate(x[1m]) and y{service=~".*"}'
    )


def catalog_series() -> set[str]:
    """Every series name the metric catalog can expose (counters with ``_total``,
    histograms with ``_bucket``, ``_sum`` and ``_count``)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def test_every_metric_queried_is_in_the_catalog() -> None:
    queries = {**dashboard_queries(), **alert_queries()}
    known = catalog_series()
    unknown = {
        f"{name}: {metric}"
        for name, expr in queries.items()
        for metric in re.findall(r"\b(?:ordersaga|process)_\w+", expr)
        if metric not in known
    }
    assert not unknown, unknown
