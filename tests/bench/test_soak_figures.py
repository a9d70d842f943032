"""A soak's windows and verdicts, from made-up samples and saga times."""

from pathlib import Path

import pytest

from ordersaga.tools.bench.measure import parse_rss, resident_bytes
from ordersaga.tools.bench.results import SagaTimes
from ordersaga.tools.bench.rows import Kind, kind_of
from ordersaga.tools.bench.soak import MB, SoakPlan, SoakSample, SoakWindow, judge, soak_windows

PLAN = SoakPlan(
    rate=10, window=60, retention=60, retention_interval=10, judged_groups=frozenset({"order-1"})
)


def sample(at: float, rss_mb: float, rows: dict[str, int], kafka_mb: float = 500) -> SoakSample:
    return SoakSample(at, {"order-1": int(rss_mb * MB), "kafka": int(kafka_mb * MB)}, rows)


def test_a_window_holds_the_sagas_that_finished_between_its_two_samples() -> None:
    samples = [sample(100, 50, {}), sample(160, 51, {"a.orders": 5}), sample(220, 52, {})]
    sagas = [
        SagaTimes(99.0, 100.0, "ORDER_COMPLETED"),  # on the first edge: the first window
        SagaTimes(150.0, 159.9, "ORDER_COMPLETED"),
        SagaTimes(159.0, 160.0, "ORDER_COMPLETED"),  # on the second edge: the second window
        SagaTimes(200.0, 230.0, "ORDER_COMPLETED"),  # after the last edge: in none
        SagaTimes(200.0, None, "ORDER_CREATED"),
    ]
    first, second = soak_windows(sagas, samples)
    assert (first.start_s, first.length_s, first.finished) == (0, 60, 2)
    assert first.p99_ms == pytest.approx(9900.0) and first.sagas_per_s == round(2 / 60, 2)
    assert (second.start_s, second.finished, second.p50_ms) == (60, 1, 1000.0)
    assert (first.pending, second.pending) == (1, 2)  # the one finishing on the edge; the last two
    assert first.rss_mb["order-1"] == 51 and first.rows == {"a.orders": 5}


def windows_of(
    rss: list[float], inbox: list[int], kafka: list[float] | None = None
) -> list[SoakWindow]:
    kafka = kafka or [500.0] * len(rss)
    samples = [sample(0, rss[0], {})]
    for i, (mb, rows, k) in enumerate(zip(rss, inbox, kafka, strict=True)):
        samples.append(
            sample(60.0 * (i + 1), mb, {"x.processed_messages": rows, "x.orders": 1000 * i}, k)
        )
    sagas = [SagaTimes(t - 0.05, t, "ORDER_COMPLETED") for t in range(1, 60 * len(rss), 6)]
    return soak_windows(sagas, samples)


def verdicts(windows: list[SoakWindow]) -> dict[str, tuple[str, bool]]:
    return {j.figure: (j.verdict, j.ok) for j in judge(windows, PLAN)}


def test_a_steady_run_is_flat_and_bounded_and_the_record_grows_unjudged() -> None:
    found = verdicts(windows_of([80, 81, 80, 81, 80, 81, 80, 81], [700, 720, 690, 710] * 2))
    assert found["rss_mb order-1"] == ("flat", True)
    assert found["rows x.processed_messages"] == ("bounded", True)
    assert found["rows x.orders"] == ("grows", True)
    assert found["sagas/s"][1] and found["p99 ms"] == ("flat", True)


def test_a_leak_and_an_unpruned_table_are_failures_and_a_server_is_only_reported() -> None:
    growing = [80.0 + 5 * i for i in range(8)]
    found = verdicts(windows_of(growing, [600 * (i + 1) for i in range(8)], kafka=growing))
    assert found["rss_mb order-1"] == ("grows", False)
    assert found["rows x.processed_messages"] == ("grows", False)
    assert found["rss_mb kafka"] == ("grows", True)  # not ours to judge


def test_the_first_windows_are_left_out_until_the_pruning_has_settled() -> None:
    # rows climb for the first retention window, then level off
    found = verdicts(windows_of([80] * 8, [300, 700, 700, 710, 690, 700, 705, 700]))
    assert PLAN.settle == 80
    assert found["rows x.processed_messages"] == ("bounded", True)


def test_tables_are_told_apart_by_what_they_should_do() -> None:
    assert kind_of("orchestrator.saga_history") == Kind.PRUNED
    assert kind_of("order.outbox_failed") == Kind.TRANSIENT
    assert kind_of("stock.reservations") == Kind.RECORD
    assert kind_of("payment.balances") == Kind.REFERENCE


def test_resident_memory_is_read_from_proc_status(tmp_path: Path) -> None:
    assert parse_rss("Name:\tpython\nVmRSS:\t  2048 kB\nThreads: 3\n") == 2 * MB
    assert parse_rss("Name:\tkthreadd\n") == 0
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "status").write_text("VmRSS: 1024 kB\n")
    assert resident_bytes([7, 8], tmp_path) == MB  # 8 is gone
