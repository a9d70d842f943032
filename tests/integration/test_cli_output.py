"""The listing commands for a person at 80 columns, and for a script with ``--json``.

At 80 columns every identifier is whole and no line is wider; ``--json`` output parses,
and what it says is what the databases hold.
"""

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from ordersaga.cli.app import app
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.services.orchestrator.tables import saga_history, saga_instances
from ordersaga.services.order.tables import orders
from tests.integration.test_orchestrator_operations import fill
from tests.support import until_async

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def run(*args: str, columns: int = 80) -> Result:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result


def assert_fits(output: str, ids: list[str], columns: int = 80) -> None:
    """Every one of ``ids`` whole on a line, and no line wider than ``columns``."""
    assert max(len(line) for line in output.splitlines()) <= columns, output
    for saga_id in ids:
        assert saga_id in output, f"{saga_id} not whole in:\n{output}"


# -- sagas -------------------------------------------------------------------------------


async def fill_many(path: Path, rounds: int) -> list[str]:
    ids: list[str] = []
    for _ in range(rounds):
        sagas = await fill(path)
        ids += [sagas.completed, sagas.cancelled, sagas.parked, sagas.running]
    return ids


async def stored_sagas(path: Path) -> dict[str, tuple[str, str | None]]:
    engine = make_engine(sqlite_url(path))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(saga_instances.c.saga_id, saga_instances.c.status, saga_instances.c.step)
            )
            return {r.saga_id: (r.status, r.step) for r in rows}
    finally:
        await engine.dispose()


async def history_length(path: Path, saga_id: str) -> int:
    engine = make_engine(sqlite_url(path))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(saga_history.c.seq).where(saga_history.c.saga_id == saga_id)
            )
            return len(rows.all())
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """52 sagas, a quarter of each kind: completed, cancelled, parked and running."""
    data_dir = tmp_path_factory.mktemp("sagas")
    ids = asyncio.run(fill_many(data_dir / "orchestrator.sqlite3", 13))
    return data_dir, ids


def test_sagas_list_at_80_columns_keeps_ids_whole_and_two_lines_a_saga(
    many: tuple[Path, list[str]],
) -> None:
    data_dir, ids = many

    shown = run("sagas", "list", "--limit", "50", "--data-dir", str(data_dir)).output

    print(shown)
    listed = set(UUID.findall(shown))
    assert len(listed) == 50 and listed <= set(ids)
    assert_fits(shown, sorted(listed))
    assert len(shown.splitlines()) <= 2 * 50 + 4


def test_sagas_list_and_show_as_json_say_what_the_database_holds(
    many: tuple[Path, list[str]],
) -> None:
    data_dir, _ = many
    stored = asyncio.run(stored_sagas(data_dir / "orchestrator.sqlite3"))

    document = json.loads(
        run("sagas", "list", "--limit", "100", "--data-dir", str(data_dir), "--json").output
    )

    assert {s["saga_id"]: (s["status"], s["step"]) for s in document["sagas"]} == stored
    assert sum(document["counts"].values()) == len(stored)
    assert document["counts"]["PARKED"] == 13
    parked = next(s for s in document["sagas"] if s["status"] == "PARKED")
    assert "cancel-payment not acknowledged after 3 attempts" in parked["reason"]

    shown = json.loads(
        run("sagas", "show", parked["saga_id"], "--data-dir", str(data_dir), "--json").output
    )

    assert shown["saga"]["saga_id"] == parked["saga_id"]
    assert shown["saga"]["data"]["amount"] == "50.00"
    expected = asyncio.run(history_length(data_dir / "orchestrator.sqlite3", parked["saga_id"]))
    assert [h["seq"] for h in shown["history"]] == sorted(h["seq"] for h in shown["history"])
    assert len(shown["history"]) == expected
    assert shown["history"][-1]["entry"]["to_status"] == "PARKED"


def test_sagas_show_at_80_columns(many: tuple[Path, list[str]]) -> None:
    data_dir, ids = many

    shown = run("sagas", "show", ids[2], "--data-dir", str(data_dir)).output

    print(shown)
    assert_fits(shown, [ids[2]])
    assert "cancel-payment not acknowledged after 3 attempts" in " ".join(shown.split())


# -- orders, through the order service's HTTP API --------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedSystem, str]]:
    """The embedded system, its order API served over HTTP on a free port."""
    async with EmbeddedSystem(tmp_path, Settings()) as system:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(system.app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())

        async def started() -> bool:
            return server.started

        await until_async(started, 10, "the order API serving")
        try:
            yield system, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await serving


async def stored_orders(system: EmbeddedSystem) -> dict[str, dict[str, Any]]:
    async with system.engines["order"].connect() as conn:
        rows = await conn.execute(select(orders))
        return {r.id: dict(r._mapping) for r in rows}


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(run, *args)


async def test_orders_and_place_order_at_80_columns_and_as_json(
    served: tuple[EmbeddedSystem, str],
) -> None:
    system, url = served
    placed = json.loads(
        (
            await cli(
                "place-order", "--user", "1", "--product", "1", "--api-url", url, "--json", "--wait"
            )
        ).output
    )
    too_many = await cli(
        "place-order",
        "--user",
        "1",
        "--product",
        "1",
        "--quantity",
        "100",
        "--api-url",
        url,
        "--wait",
    )
    print(too_many.output)
    [cancelled_id] = UUID.findall(too_many.output)
    assert_fits(too_many.output, [cancelled_id])

    listed = json.loads((await cli("orders", "--api-url", url, "--json")).output)
    shown = (await cli("orders", "--api-url", url)).output
    print(shown)

    stored = await stored_orders(system)
    assert {placed["orderID"], cancelled_id} == set(stored)
    assert placed["status"] == stored[placed["orderID"]]["status"] == "ORDER_COMPLETED"
    assert listed["total"] == 2
    for item in listed["items"]:
        row = stored[item["orderID"]]
        assert (item["status"], item["reason"], item["quantity"]) == (
            row["status"],
            row["reason"],
            row["quantity"],
        )
    assert stored[cancelled_id]["reason"]
    assert await system.wait_until_quiet(timeout=10)
    verified = await cli("verify", "--data-dir", str(system.data_dir), "--json")
    checks = json.loads(verified.output)
    assert checks["ok"] is True
    assert [c["number"] for c in checks["checks"]] == list(range(1, len(checks["checks"]) + 1))
    assert all(c["ok"] and c["name"] and c["figures"] for c in checks["checks"])
    assert_fits(shown, list(stored))
    assert " ".join(stored[cancelled_id]["reason"].split()) in " ".join(shown.split())


async def test_a_token_of_another_key_is_refused_with_what_to_do(
    served: tuple[EmbeddedSystem, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = served
    monkeypatch.setenv("ORDERSAGA_AUTH_KEY_FILE", str(tmp_path / "elsewhere" / "key.pem"))

    refused = await asyncio.to_thread(
        CliRunner().invoke, app, ["place-order", "--user", "1", "--product", "1", "--api-url", url]
    )
    with_token = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["orders", "--api-url", url, "--json", "--token", "not-a-token"],
    )

    assert refused.exit_code == 1
    said = " ".join(refused.output.split())
    assert "401: token is signed with an unknown key (kid)" in said
    assert "--data-dir, which must be the running system's" in said
    assert with_token.exit_code == 1
    assert "401: token is malformed" in " ".join(with_token.output.split())
