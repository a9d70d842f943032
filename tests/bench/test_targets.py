"""The bench's verdicts on the performance targets, from runs' figures."""

from typing import Any

from ordersaga.tools.bench.results import Latency, Outcomes, RunResult, Second
from ordersaga.tools.bench.targets import against_targets, cpu_ms_per_saga, window_seconds


def run(
    name: str,
    *,
    system: str = "real",
    rate: float | None = None,
    throughput: float = 100.0,
    cpu: dict[str, float] | None = None,
    p99: float = 50.0,
    per_second: list[int] | None = None,
) -> RunResult:
    finished = int(throughput * 10)
    seconds = per_second or [int(throughput)] * 12
    return RunResult(
        name=name,
        system=system,
        load={"mode": "max" if rate is None else "rate", "rate": rate},
        # the load starts at 100.0, the window is [102.0, 112.0)
        window={"load_start": 100.0, "start": 102.0, "end": 112.0, "length_s": 10.0},
        placed=finished,
        finished=finished,
        finished_in_window=finished,
        drained=True,
        throughput=throughput,
        latency_ms=Latency(finished, p99 / 2, p99 * 0.9, p99, p99 * 1.2, p99 / 2),
        outcomes=Outcomes(finished, 0, 0, []),
        cpu={
            group: {"cpu_s": seconds_used, "ms_per_saga": None, "cores": None, "pids": []}
            for group, seconds_used in (cpu or {"order": 1.0, "bench": 5.0}).items()
        },
        machine={"busy_cores": 1.0, "cpus": 2.0},
        series=[Second(i, n, None) for i, n in enumerate(seconds)],
    )


def verdicts(runs: list[RunResult]) -> dict[str, Any]:
    return {t.name: t.met for t in against_targets(runs)}


def test_cpu_per_saga_leaves_the_load_generator_out() -> None:
    # 1,000 sagas; the system used 2 s (order 1.5 + kafka 0.5), the bench 5 s
    figures = run("max", cpu={"order": 1.5, "kafka": 0.5, "bench": 5.0})
    assert cpu_ms_per_saga(figures) == 2.0


def test_only_whole_seconds_inside_the_window_count() -> None:
    # buckets 0 and 1 are the warm-up, 12+ after the window's end
    figures = run("max", per_second=[1, 1, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 9, 9])
    assert window_seconds(figures) == [50, 60, 70, 80, 90, 100, 110, 120, 130, 140]


def test_every_target_met() -> None:
    runs = [
        run("null-chain", system="null-chain", throughput=150.0),
        run("max", throughput=100.0, cpu={"order": 2.0}),
        run("half-rate", rate=50.0, throughput=50.0, cpu={"order": 1.4}, p99=80.0),
        run("rate-25", rate=25.0, throughput=25.0, cpu={"order": 1.4}),
    ]
    assert verdicts(runs) == {
        "share of the ceiling at --max": True,
        "flat series at --max": True,
        "p99 at half the maximum rate": True,
        "CPU per saga, half rate against --max": True,  # 2.8 ms against 2.0
        "CPU per saga, 25/s against --max": True,  # 5.6 ms against 2.0
    }


def test_each_target_missed() -> None:
    stalls = [100, 100, 100, 100, 100, 40, 100, 100, 100, 100]  # the window's ten seconds
    runs = [
        run("null-chain", system="null-chain", throughput=1000.0),
        run("max", throughput=100.0, cpu={"order": 2.0}, per_second=[100, 100, *stalls, 100]),
        run("half-rate", rate=50.0, throughput=50.0, cpu={"order": 1.6}, p99=385.0),
        run("rate-25", rate=25.0, throughput=25.0, cpu={"order": 1.6}),
    ]
    assert verdicts(runs) == {
        "share of the ceiling at --max": False,  # 10 %
        "flat series at --max": False,  # a second at 40 against a mean of 94
        "p99 at half the maximum rate": False,
        "CPU per saga, half rate against --max": False,  # 3.2 ms against 2.0
        "CPU per saga, 25/s against --max": False,  # 6.4 ms against 2.0: 3.2x
    }


def test_runs_not_made_are_not_judged() -> None:
    targets = against_targets([run("max")])
    assert {t.name: t.met for t in targets} == {
        "share of the ceiling at --max": None,
        "flat series at --max": True,
        "p99 at half the maximum rate": None,
        "CPU per saga, half rate against --max": None,
        "CPU per saga, 25/s against --max": None,
    }
    assert all("not measured" in t.measured for t in targets if t.met is None)


def test_the_embedded_system_is_judged_on_its_throughput() -> None:
    assert verdicts([run("max", system="embedded", throughput=1600.0)]) == {
        "embedded at --max": True
    }
    assert verdicts([run("max", system="embedded", throughput=354.0)]) == {
        "embedded at --max": False
    }
