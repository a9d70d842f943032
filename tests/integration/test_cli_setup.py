"""`db upgrade` and `seed` say what they did, and that they did nothing the second time."""

import os
import subprocess
from pathlib import Path

from ordersaga.db.migrate import head_revision
from ordersaga.runtime.processes import CLI
from ordersaga.services.registry import SERVICES, service


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_upgrade_and_seed_tell_what_they_did(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COLUMNS": "200",
        **{
            s.url_variable: f"sqlite+aiosqlite:///{tmp_path / s.name}.sqlite3" for s in SERVICES
        },
    }
    order_head = head_revision(service("order"))
    assert f"order: created schema 0001..{order_head}" in run(env, "db", "upgrade")
    again = run(env, "db", "upgrade", "order")
    assert again.strip() == f"order: schema already at {order_head}, the latest"

    first = run(env, "seed")
    assert "order: loaded 3 products" in first
    assert "stock: loaded 3 stock" in first
    assert "payment: loaded 3 balances" in first
    assert "orchestrator: no sample data to load" in first
    second = run(env, "seed")
    for name in ("order", "stock", "payment"):
        assert f"{name}: left alone: data present" in second


def test_seed_before_upgrade_says_to_upgrade(tmp_path: Path) -> None:
    env = {**os.environ, "ORDERSAGA_STOCK_DB_URL": f"sqlite+aiosqlite:///{tmp_path}/s.sqlite3"}
    done = subprocess.run([*CLI, "seed", "stock"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "ordersaga db upgrade stock" in done.stderr
