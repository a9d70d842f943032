"""What `ordersaga top` computes from two rounds of scrapes: rates, percentiles from
bucket differences, gauges taken once per service, restarts counted from zero."""

import math

import pytest

from ordersaga.tools.scrape import Scrape, parse
from ordersaga.tools.top import frame, quantile, replica_urls

BUCKETS = ("0.1", "0.5", "1.0", "+Inf")


def orchestrator(finished: dict[tuple[str, str], int], buckets: dict[str, int], cpu: float,
                 parked: int = 0, lag: int = 0, replica: str = "1") -> str:  # fmt: skip
    labels = f'replica="{replica}",service="orchestrator"'
    lines = [
        f"ordersaga_replica_info{{{labels}}} 1",
        f"ordersaga_sagas_started_total{{{labels}}} {sum(finished.values())}",
        f"process_cpu_seconds_total {cpu}",
        "process_resident_memory_bytes 104857600",
        f"ordersaga_sagas_parked{{{labels}}} {parked}",
        f'ordersaga_consumer_lag{{{labels},group="orchestrator-service",topic="t",partition="0"}}'
        f" {lag}",
        f'ordersaga_outbox_rows_waiting{{{labels}}} {parked * 2}',
    ]
    for (outcome, reason), n in finished.items():
        lines.append(
            f'ordersaga_sagas_finished_total{{{labels},outcome="{outcome}",'
            f'reason_class="{reason}"}} {n}'
        )
    for le in BUCKETS:
        lines.append(
            f'ordersaga_saga_duration_seconds_bucket{{{labels},outcome="completed",le="{le}"}} '
            f"{buckets[le]}"
        )
    return "\n".join(lines) + "\n"


def scrape(url: str, text: str) -> Scrape:
    return parse(url, text)


def test_rates_and_percentiles_are_over_the_interval() -> None:
    url = "http://127.0.0.1:9111/metrics"
    before = scrape(url, orchestrator({("completed", "none"): 10}, dict.fromkeys(BUCKETS, 10), 1.0))
    after = scrape(
        url,
        orchestrator(
            {("completed", "none"): 30, ("cancelled", "stock_refused"): 4},
            {"0.1": 10, "0.5": 20, "1.0": 30, "+Inf": 30},
            1.5,
            parked=1,
            lag=7,
        ),
    )
    shown = frame({url: before}, {url: after}, 2.0)
    assert shown.sagas_finished_per_second == {"completed": 10.0, "cancelled": 2.0}
    assert shown.sagas_started_per_second == 12.0
    assert shown.sagas_finished_total == {"completed": 30.0, "cancelled": 4.0}
    assert shown.sagas_finished_by_reason == {"none": 30.0, "stock_refused": 4.0}
    # The 20 finished in the interval: 10 in (0.1, 0.5], 10 in (0.5, 1.0].
    assert shown.saga_p50_seconds == pytest.approx(0.5)
    assert shown.saga_p99_seconds == pytest.approx(0.5 + 0.5 * (19.8 - 10) / 10)
    assert shown.lag == {"orchestrator-service": 7.0}
    assert shown.parked == 1.0
    assert shown.outbox_waiting == {"orchestrator": 2.0}
    [replica] = shown.replicas
    assert replica.name == "orchestrator-1"
    assert replica.cpu_cores == pytest.approx(0.25)
    assert replica.memory_bytes == 100 * 2**20


def test_a_restarted_replica_counts_from_zero_and_gauges_are_not_summed() -> None:
    one, two = "http://h:9111/metrics", "http://h:9112/metrics"
    before = {
        one: scrape(one, orchestrator({("completed", "none"): 50}, dict.fromkeys(BUCKETS, 50), 9)),
        two: scrape(two, orchestrator({}, dict.fromkeys(BUCKETS, 0), 1.0, replica="2")),
    }
    restarted = orchestrator({("completed", "none"): 3}, dict.fromkeys(BUCKETS, 3), 0.5, parked=2)
    steady = orchestrator(
        {("completed", "none"): 5}, dict.fromkeys(BUCKETS, 5), 1.0, parked=2, replica="2"
    )
    after = {one: scrape(one, restarted), two: scrape(two, steady)}  # one's counters went down
    shown = frame(before, after, 1.0)
    assert shown.sagas_finished_per_second == {"completed": 8.0, "cancelled": 0.0}
    assert shown.parked == 2.0, "a database figure each replica reports alike"
    assert shown.saga_p50_seconds == pytest.approx(0.05)


def test_an_endpoint_that_does_not_answer_is_shown_as_such() -> None:
    url = "http://h:9101/metrics"
    shown = frame({}, {url: Scrape(url, error="ConnectError: refused")}, 1.0)
    [replica] = shown.replicas
    assert replica.error == "ConnectError: refused"
    assert shown.sagas_finished_total == {}
    assert shown.saga_p50_seconds is None


def test_quantiles_of_cumulative_buckets() -> None:
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {1.0: 0, math.inf: 0}) is None
    assert quantile(0.5, {1.0: 4, 2.0: 8, math.inf: 8}) == 1.0
    assert quantile(0.75, {1.0: 4, 2.0: 8, math.inf: 8}) == 1.5
    assert quantile(0.99, {1.0: 4, 2.0: 8, math.inf: 10}) == 2.0, "in +Inf: the largest bound"
    with pytest.raises(ValueError, match="between 0 and 1"):
        quantile(1.5, {1.0: 1})


def test_the_endpoints_of_up_with_replicas() -> None:
    assert replica_urls("127.0.0.1", 9100, 2) == [
        f"http://127.0.0.1:{port}/metrics" for port in (9101, 9102, 9111, 9112, 9121, 9122,
                                                         9131, 9132)
    ]  # fmt: skip


def test_not_the_text_format_is_an_error_naming_the_endpoint() -> None:
    with pytest.raises(ValueError, match="http://h:1/metrics"):
        parse("http://h:1/metrics", "<html>not metrics{</html>\n")
