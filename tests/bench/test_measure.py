"""CPU figures from /proc text, on fake /proc trees and samples."""

from pathlib import Path

import pytest

from ordersaga.tools.bench.measure import (
    CLOCK_TICKS,
    MachineTimes,
    Sample,
    cpu_between,
    infrastructure_pids,
    machine_between,
    parse_pid_stat,
    parse_proc_stat,
    take_sample,
)


def stat_line(pid: int, name: str, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    # fields 3..13 (state .. cmajflt), then utime stime cutime cstime, then the rest
    before = "S 1 1 1 0 -1 4194560 100 0 0 0"
    after = "20 0 4 0 1234 567890 42"
    return f"{pid} ({name}) {before} {utime} {stime} {cutime} {cstime} {after}\n"


def test_a_process_stat_line_gives_its_ticks_and_those_it_reaped() -> None:
    assert parse_pid_stat(stat_line(7, "postgres", 100, 50, 30, 20)) == ("postgres", 200)


def test_a_name_with_spaces_and_parentheses_is_read_whole() -> None:
    name, ticks = parse_pid_stat(stat_line(8, "a) (b c", 1, 2))
    assert (name, ticks) == ("a) (b c", 3)


def test_the_machine_line_splits_busy_from_idle_and_iowait() -> None:
    text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1\n"
    assert parse_proc_stat(text) == MachineTimes(busy=160, total=1000)
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1\n")


def fake_proc(root: Path, processes: dict[int, tuple[str, bytes, int]], machine: str) -> Path:
    for pid, (comm, cmdline, ticks) in processes.items():
        entry = root / str(pid)
        entry.mkdir()
        (entry / "comm").write_text(comm + "\n")
        (entry / "cmdline").write_bytes(cmdline)
        (entry / "stat").write_text(stat_line(pid, comm, ticks, 0))
    (root / "stat").write_text(machine)
    (root / "self").mkdir()
    return root


def test_kafka_postgres_and_mariadb_are_found_by_name(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        {
            10: ("java", b"java\0-cp\0libs/*\0kafka.Kafka\0server.properties\0", 1),
            11: ("java", b"java\0-jar\0other.jar\0", 1),
            20: ("postgres", b"/usr/lib/postgresql/15/bin/postgres\0", 1),
            21: ("postgres", b"postgres: checkpointer\0", 1),
            30: ("mariadbd", b"mariadbd\0--defaults-file=x\0", 1),
            40: ("python", b"python\0", 1),
        },
        "cpu  1 0 0 1 0 0 0 0 0 0\n",
    )
    assert infrastructure_pids(proc) == {"kafka": [10], "postgres": [20, 21], "mariadb": [30]}


def test_a_sample_reads_every_group_and_skips_vanished_processes(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {5: ("python", b"", 300)}, "cpu  100 0 100 800 0 0 0 0 0 0\n")
    sample = take_sample(lambda: {"order-1": [5], "gone": [999]}, proc)
    assert sample.groups == {"order-1": {5: 300}, "gone": {}}
    assert sample.machine == MachineTimes(busy=200, total=1000)


def test_cpu_between_samples_counts_new_processes_whole() -> None:
    machine = MachineTimes(0, 0)
    start = Sample(0.0, {"postgres": {1: 100, 2: 50}, "bench": {9: 10}}, machine)
    end_machine = MachineTimes(busy=3 * CLOCK_TICKS, total=4 * CLOCK_TICKS)
    # backend 2 ended (lost), backend 3 started during the window
    end = Sample(
        1.0, {"postgres": {1: 100 + CLOCK_TICKS, 3: CLOCK_TICKS}, "bench": {9: 10}}, end_machine
    )
    used = cpu_between(start, end)
    assert used["postgres"].seconds == pytest.approx(2.0)
    assert used["postgres"].pids == [1, 3]
    assert used["bench"].seconds == 0
    assert machine_between(start, end) == pytest.approx((3.0, 0.75))


def test_this_process_is_measured_on_the_real_proc() -> None:
    import os

    sample = take_sample(lambda: {"bench": [os.getpid()]})
    assert sample.groups["bench"][os.getpid()] >= 0
    assert sample.machine.total > sample.machine.busy > 0
