"""``ordersaga bench`` end to end, tiny and slow-paced: it exits 0 and writes sound
figures, a JSON file and a PNG. Nothing here is about speed."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SERVICES = ("order-1", "orchestrator-1", "stock-1", "payment-1")
NULL_STAGES = ("null-source", "null-orchestrator", "null-stock", "null-payment")


def bench(out: Path, *options: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "ordersaga.cli", "bench", "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    print(output)  # the summary, for `pytest -s`
    assert done.returncode == 0, output
    assert (out / "bench.png").read_bytes().startswith(PNG_MAGIC)
    document: dict[str, Any] = json.loads((out / "bench.json").read_text())
    return document


def assert_sound(run: dict[str, Any], processes: set[str]) -> None:
    assert run["placed"] > 0
    assert run["finished"] == run["placed"]
    assert run["drained"] is True
    assert run["throughput"] > 0
    latency = run["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert set(run["cpu"]) == processes
    for figures in run["cpu"].values():
        assert figures["cpu_s"] >= 0 and figures["ms_per_saga"] is not None
        assert figures["pids"]
    assert 0 < run["machine"]["busy_share"] <= 1
    assert sum(second["finished"] for second in run["series"]) == run["finished"]


def assert_invariants_hold(run: dict[str, Any]) -> None:
    assert len(run["invariants"]) == 6
    assert all(check["ok"] for check in run["invariants"]), run["invariants"]
    assert run["outcomes"]["completed"] + run["outcomes"]["cancelled"] == run["finished"]


def test_an_embedded_run_at_a_low_rate(tmp_path: Path) -> None:
    document = bench(tmp_path, "--embedded", "--rate", "20", "--warmup", "1", "--duration", "2")
    (run,) = document["runs"]
    assert run["system"] == "embedded" and run["load"]["rate"] == 20
    assert_sound(run, {"embedded", "bench"})
    assert_invariants_hold(run)
    assert run["generator"]["errors"] == 0 and run["generator"]["cpu_us_per_request"] > 0


@pytest.mark.slow
def test_a_real_stack_run_with_the_null_chain_ceiling(tmp_path: Path) -> None:
    document = bench(
        tmp_path,
        *("--rate", "20", "--warmup", "1", "--duration", "2"),
        *("--with-baseline", "--max-in-flight", "100"),
    )
    ceiling, run = document["runs"]
    assert ceiling["system"] == "null-chain" and ceiling["load"]["mode"] == "max"
    assert_sound(ceiling, {*NULL_STAGES, "kafka", "bench"})
    assert run["system"] == "real"
    assert_sound(run, {*SERVICES, "kafka", "postgres", "mariadb", "bench"})
    assert_invariants_hold(run)
    assert document["ceiling_sagas_per_s"] == ceiling["throughput"]
    assert document["share_of_ceiling"]["rate"] > 0


def run_bench(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ordersaga.cli", "bench", "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "132"},
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


EMBEDDED_BRIEFLY = ("--embedded", "--rate", "20", "--warmup", "1", "--duration", "2")


def test_the_counts_say_whether_they_include_the_warm_up_and_the_last_frame_agrees(
    tmp_path: Path,
) -> None:
    shown = run_bench(tmp_path, *EMBEDDED_BRIEFLY).stdout
    (run,) = json.loads((tmp_path / "bench.json").read_text())["runs"]

    last_frame = re.findall(
        r"placed (\d+), finished (\d+) \(warm-up included\); (\d+) in the window", shown
    )
    assert last_frame[-1] == (
        str(run["placed"]),
        str(run["finished"]),
        str(run["finished_in_window"]),
    )
    assert f"{run['finished']} / {run['placed']}" in shown
    assert (
        "(warm-up included)" in shown
        and "in the window: sagas finished in the measured window" in shown
    )
    assert 0 < run["finished_in_window"] <= run["finished"]
    assert "of ceiling" not in shown  # no ceiling was measured


def test_json_prints_the_document_alone(tmp_path: Path) -> None:
    done = run_bench(tmp_path, *EMBEDDED_BRIEFLY, "--json")

    document = json.loads(done.stdout)

    assert document == json.loads((tmp_path / "bench.json").read_text())
    (run,) = document["runs"]
    assert run["finished"] == run["placed"] > 0
    assert "placed" in done.stderr  # the progress, out of the way


def test_a_max_run_then_a_light_rate_judged_against_the_targets(tmp_path: Path) -> None:
    shown = run_bench(
        tmp_path, "--embedded", "--max", "--warmup", "1", "--duration", "2", "--then-rate", "10"
    ).stdout
    document = json.loads((tmp_path / "bench.json").read_text())
    top, light = document["runs"]
    assert (top["name"], top["load"]["mode"]) == ("max", "max")
    assert (light["name"], light["load"]["rate"]) == ("rate-10", 10)
    assert_invariants_hold(light)
    (target,) = document["targets"]
    assert target["name"] == "embedded at --max"
    assert target["met"] == (top["throughput"] >= 1500)
    assert "Against the targets" in shown


def test_a_light_rate_follows_only_a_max_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ordersaga.cli", "bench", "--rate", "5", "--then-rate", "25"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--then-rate follows a --max run" in done.stdout + done.stderr
