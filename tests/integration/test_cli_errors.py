"""Every command that needs a server answers, when it is away, in one short paragraph
naming it, its address and `make infra-up`, with exit code 3 and no traceback."""

import os
import subprocess

import pytest

from ordersaga.runtime.processes import CLI

CLOSED = "127.0.0.1:1"

AWAY = {
    "ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS": CLOSED,
    "ORDERSAGA_ORDER_DB_URL": f"mysql+aiomysql://ordersaga:ordersaga@{CLOSED}/orders",
    **{
        f"ORDERSAGA_{name.upper()}_DB_URL": (
            f"postgresql+asyncpg://ordersaga:ordersaga@{CLOSED}/{name}?ssl=disable"
        )
        for name in ("stock", "payment", "orchestrator")
    },
}

COMMANDS = [
    ["verify"],
    ["db", "upgrade"],
    ["seed"],
    ["sagas", "list"],
    ["dlq", "list"],
    ["prune"],
    ["outbox", "failed"],
    ["orders", "--api-url", f"http://{CLOSED}"],
    ["place-order", "--user", "1", "--product", "1", "--api-url", f"http://{CLOSED}"],
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **AWAY}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unreachable_server_is_one_paragraph_and_exit_3(command: list[str]) -> None:
    done = run(*command)
    said = done.stdout + done.stderr
    assert done.returncode == 3, said
    assert "Traceback" not in said
    assert len(said.strip().splitlines()) < 6, said
    assert CLOSED in said
    assert "make infra-up" in said
    assert said.startswith("Error: ")


def test_debug_shows_the_traceback() -> None:
    done = run("--debug", "db", "upgrade", "order")
    assert done.returncode != 0
    assert "Traceback" in done.stderr


def test_a_usage_error_is_exit_2() -> None:
    done = run("db", "reset")
    assert done.returncode == 2
    assert "--yes" in done.stderr
