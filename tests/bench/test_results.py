"""Percentiles, the measurement window and per-second buckets, from saga times."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordersaga.tools.bench.results import (
    CANCELLED,
    COMPLETED,
    SagaTimes,
    created_between,
    finished_between,
    histogram,
    latency_of,
    outcomes_of,
    per_second,
    percentile,
    series,
)


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0


def test_a_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


@given(st.lists(st.floats(min_value=0, max_value=60, allow_nan=False), min_size=1))
def test_percentiles_are_ordered(seconds: list[float]) -> None:
    latency = latency_of(seconds)
    assert latency is not None
    assert latency.count == len(seconds)
    assert latency.p50 <= latency.p90 <= latency.p99 <= latency.max
    assert latency.max == pytest.approx(max(seconds) * 1000)


def test_latencies_are_in_milliseconds() -> None:
    latency = latency_of([0.010, 0.020, 0.030])
    assert latency is not None
    assert (latency.p50, latency.max) == pytest.approx((20.0, 30.0))
    assert latency_of([]) is None


def saga(created: float, took: float | None, status: str = COMPLETED) -> SagaTimes:
    return SagaTimes(created, None if took is None else created + took, status)


def test_the_window_counts_finishes_and_creations_separately() -> None:
    sagas = [saga(9.5, 1.0), saga(10.2, 0.1), saga(19.9, 0.5), saga(12.0, None, "ORDER_CREATED")]
    # finished in [10, 20): 10.5 and 10.3; 20.4 is after the window
    assert finished_between(sagas, 10.0, 20.0) == 2
    created = created_between(sagas, 10.0, 20.0)
    assert [s.created for s in created] == [10.2, 19.9, 12.0]


def test_sagas_are_bucketed_by_the_second_they_finished_in() -> None:
    start = 100.0
    sagas = [
        saga(100.1, 0.2),  # finishes at 100.3: second 0
        saga(100.5, 0.6),  # 101.1: second 1
        saga(100.9, 0.15),  # 101.05: second 1
        saga(99.0, 0.5),  # 99.5: before the start, left out
        saga(101.0, 5.0),  # 106.0: past the last bucket, left out
        saga(101.0, None, "ORDER_CREATED"),  # never finished
    ]
    seconds = per_second(sagas, start, 3)
    assert [s.finished for s in seconds] == [1, 2, 0]
    assert seconds[0].p99_ms == pytest.approx(200.0)
    assert seconds[1].p99_ms == pytest.approx(600.0)
    assert seconds[2].p99_ms is None


def test_outcomes_count_statuses_and_the_commonest_reasons() -> None:
    sagas = [
        SagaTimes(0, 1, COMPLETED),
        SagaTimes(0, 1, CANCELLED, "stock: insufficient"),
        SagaTimes(0, 1, CANCELLED, "stock: insufficient"),
        SagaTimes(0, 1, CANCELLED, "payment did not answer within 30s"),
        SagaTimes(0, None, "ORDER_CREATED"),
    ]
    outcomes = outcomes_of(sagas)
    assert (outcomes.completed, outcomes.cancelled, outcomes.unfinished) == (1, 3, 1)
    assert outcomes.top_reasons[0] == ("stock: insufficient", 2)


def test_the_histogram_holds_every_value() -> None:
    edges, counts = histogram([1.0, 2.0, 2.5, 10.0], bins=5)
    assert len(edges) == 6 and edges[0] == 0 and edges[-1] == pytest.approx(10.0)
    assert sum(counts) == 4
    assert counts[-1] == 1  # the largest value lands in the last bin
    assert histogram([]) == ([], [])


def test_the_series_holds_every_finished_saga_even_one_before_the_load_start() -> None:
    load_start = 100.0
    sagas = [
        saga(99.6, 0.2),  # started and finished before the bench noted the load's start
        saga(100.5, 0.1),
        saga(101.0, 4.5),  # finished after the window's end
        saga(101.0, None, "ORDER_CREATED"),
    ]
    seconds = series(sagas, load_start, end=103.0)
    assert sum(s.finished for s in seconds) == 3
    assert seconds[0].finished == 1 and seconds[-1].finished == 1  # from 99.6 to 105.5
