"""``ordersaga bench --soak`` for a minute on the real stack, in windows of 10 s, with
retention windows of 5 s: every saga ends, the invariants hold, the inbox and saga
tables are pruned and stay bounded, and no service's memory grows. Nothing here is
about speed: the latency and rate verdicts are printed, not asserted."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.bench.test_smoke import PNG_MAGIC, SERVICES, assert_invariants_hold

RATE, DURATION = 5, 60
PRUNED = (
    "orchestrator.processed_messages",
    "orchestrator.saga_instances",
    "orchestrator.saga_history",
    "order.processed_messages",
    "stock.processed_messages",
    "payment.processed_messages",
)


def soak(out: Path) -> dict[str, Any]:
    options = ["--rate", str(RATE), "--warmup", "2", "--duration", str(DURATION)]
    options += ["--window", "10", "--retention", "5", "--retention-interval", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "ordersaga.cli", "bench", "--soak", "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=DURATION + 200,
    )
    output = done.stdout + done.stderr
    print(output)
    assert done.returncode == 0, output
    assert (out / "soak.png").read_bytes().startswith(PNG_MAGIC)
    document: dict[str, Any] = json.loads((out / "soak.json").read_text())
    return document


@pytest.mark.slow
def test_a_minute_of_soak_prunes_and_grows_nothing(tmp_path: Path) -> None:
    document = soak(tmp_path)
    run = document["run"]
    assert run["placed"] > 0 and run["finished"] == run["placed"] and run["drained"]
    assert_invariants_hold(run)
    assert document["sound"] and document["bounded"]
    assert set(document["judged_processes"]) == {*SERVICES, "bench"}

    windows = document["windows"]
    assert len(windows) == DURATION // 10
    last = windows[-1]["rows"]
    # every saga writes at least one row into each of these: fewer at the end is pruning
    for table in PRUNED:
        assert last[table] < run["placed"], (table, last[table], run["placed"])
    # the business record is kept (the last count is taken before the last answers came)
    assert last["order.orders"] > windows[0]["rows"]["order.orders"]

    verdicts = {v["figure"]: v for v in document["verdicts"]}
    for process in (*SERVICES, "bench"):
        assert verdicts[f"rss_mb {process}"]["verdict"] != "grows", verdicts[f"rss_mb {process}"]
    for table in PRUNED:
        assert verdicts[f"rows {table}"]["verdict"] == "bounded", verdicts[f"rows {table}"]
