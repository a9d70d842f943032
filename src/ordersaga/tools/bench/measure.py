"""CPU time from /proc: per process (utime + stime, and what it reaped from its children)
and for the whole machine, sampled at the start and the end of a measurement window.

Children's time counts because PostgreSQL forks a backend per connection: when one
exits, its CPU moves into the postmaster's cutime/cstime instead of vanishing.
"""

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_pid_stat(text: str) -> tuple[str, int]:
    """(command name, CPU ticks used by the process and its reaped children) from the
    text of /proc/<pid>/stat. The name may hold spaces and parentheses: it ends at the
    last ``)``."""
    open_at = text.index("(")
    close_at = text.rindex(")")
    name = text[open_at + 1 : close_at]
    # Fields after the name, numbered as in proc(5) from field 3 (state) on.
    fields = text[close_at + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return name, utime + stime + cutime + cstime


@dataclass(frozen=True)
class MachineTimes:
    """Ticks since boot over all CPUs: busy (not idle, not waiting for I/O) and total."""

    busy: int
    total: int


def parse_proc_stat(text: str) -> MachineTimes:
    """The machine's CPU ticks from the aggregate ``cpu`` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            # user nice system idle iowait irq softirq steal (guest time is in user already)
            values = [int(v) for v in line.split()[1:9]]
            idle = values[3] + values[4]
            return MachineTimes(busy=sum(values) - idle, total=sum(values))
    raise ValueError("no aggregate cpu line in /proc/stat")


def process_ticks(pid: int, proc: Path = PROC) -> int | None:
    """The CPU ticks of ``pid`` and its reaped children; None when it is gone."""
    try:
        return parse_pid_stat((proc / str(pid) / "stat").read_text())[1]
    except (OSError, ValueError, IndexError):
        return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def infrastructure_pids(proc: Path = PROC) -> dict[str, list[int]]:
    """The processes of Kafka (the java process running kafka.Kafka), PostgreSQL (every
    process named postgres) and MariaDB (mariadbd) on this machine."""
    found: dict[str, list[int]] = {"kafka": [], "postgres": [], "mariadb": []}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        comm = _read(entry / "comm").strip()
        if comm == b"java" and b"kafka.Kafka" in _read(entry / "cmdline"):
            found["kafka"].append(int(entry.name))
        elif comm == b"postgres":
            found["postgres"].append(int(entry.name))
        elif comm in (b"mariadbd", b"mysqld"):
            found["mariadb"].append(int(entry.name))
    return {group: sorted(pids) for group, pids in found.items() if pids}


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    groups: Mapping[str, Mapping[int, int]]  # group → pid → ticks
    machine: MachineTimes


GroupSource = Callable[[], Mapping[str, Iterable[int]]]


def take_sample(groups: GroupSource, proc: Path = PROC) -> Sample:
    """The ticks of every process of every group, and the machine's, now."""
    ticks: dict[str, dict[int, int]] = {}
    for group, pids in groups().items():
        ticks[group] = {}
        for pid in pids:
            used = process_ticks(pid, proc)
            if used is not None:
                ticks[group][pid] = used
    machine = parse_proc_stat((proc / "stat").read_text())
    return Sample(time.monotonic(), ticks, machine)


@dataclass(frozen=True)
class CpuUse:
    seconds: float
    pids: list[int]


def cpu_between(start: Sample, end: Sample) -> dict[str, CpuUse]:
    """CPU seconds per group between two samples. A process started in between counts
    whole; one that ended in between is lost unless its parent reaped it (PostgreSQL)."""
    used: dict[str, CpuUse] = {}
    for group, pids in end.groups.items():
        before = start.groups.get(group, {})
        ticks = sum(max(0, now - before.get(pid, 0)) for pid, now in pids.items())
        used[group] = CpuUse(ticks / CLOCK_TICKS, sorted(pids))
    return used


def machine_between(start: Sample, end: Sample) -> tuple[float, float]:
    """(busy CPU seconds, share of all CPUs busy) on the whole machine between samples."""
    busy = end.machine.busy - start.machine.busy
    total = end.machine.total - start.machine.total
    return busy / CLOCK_TICKS, (busy / total if total > 0 else 0.0)


def parse_rss(status: str) -> int:
    """Resident bytes from the text of /proc/<pid>/status (its ``VmRSS`` line, in kB);
    0 for a process without one (a kernel thread, a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def resident_bytes(pids: Iterable[int], proc: Path = PROC) -> int:
    """The resident memory of ``pids`` added up; processes gone are left out. Memory they
    share (PostgreSQL's shared buffers) counts once per process."""
    total = 0
    for pid in pids:
        try:
            total += parse_rss((proc / str(pid) / "status").read_text())
        except (OSError, ValueError, IndexError):
            continue
    return total
