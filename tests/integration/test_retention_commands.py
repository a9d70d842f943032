"""``ordersaga sagas export`` and ``ordersaga prune`` on an embedded system's databases."""

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from ordersaga.cli.app import app
from ordersaga.config import Settings
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.db.timestamps import utc_now
from ordersaga.runtime.embedded import database_path
from ordersaga.services.orchestrator.tables import saga_instances
from ordersaga.services.registry import SERVICE_NAMES, service_spec
from ordersaga.services.stock.tables import inbox
from tests.persistence.test_retention import add_inbox_rows, add_saga

DAY = timedelta(days=1)


async def fill(data_dir: Path) -> None:
    now = utc_now()
    for name in SERVICE_NAMES:
        engine = make_engine(sqlite_url(database_path(data_dir, name)))
        await create_schema(engine, service_spec(name, Settings()).metadata)
        if name == "stock":
            await add_inbox_rows(engine, {"old": 8 * DAY, "new": DAY}, now)
        if name == "orchestrator":
            await add_saga(engine, "old-saga", "COMPLETED", 31 * DAY, now=now)
            await add_saga(engine, "new-saga", "CANCELLED", DAY, now=now)
        await engine.dispose()


async def rows(data_dir: Path, service: str, table_name: str) -> int:
    table = {"stock": inbox, "orchestrator": saga_instances}[service]
    assert table.name == table_name
    engine = make_engine(sqlite_url(database_path(data_dir, service)))
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        await engine.dispose()


def test_sagas_are_exported_then_pruned_with_the_inbox(tmp_path: Path) -> None:
    asyncio.run(fill(tmp_path))
    exported = tmp_path / "sagas.jsonl"
    before = (utc_now() - 30 * DAY).date().isoformat()
    runner = CliRunner()

    export = runner.invoke(
        app,
        [
            "sagas",
            "export",
            "--finished-before",
            before,
            "--output",
            str(exported),
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert export.exit_code == 0, export.output
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["saga_id"] for line in lines] == ["old-saga"]
    assert len(lines[0]["history"]) == 2

    pruned = runner.invoke(app, ["prune", "--data-dir", str(tmp_path)])
    assert pruned.exit_code == 0, pruned.output
    assert "stock: 1 rows pruned" in pruned.output
    assert "orchestrator: 1 rows pruned" in pruned.output
    assert asyncio.run(rows(tmp_path, "stock", "processed_messages")) == 1
    assert asyncio.run(rows(tmp_path, "orchestrator", "saga_instances")) == 1


def test_a_bad_date_or_service_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_date = runner.invoke(app, ["sagas", "export", "--finished-before", "last tuesday"])
    bad_service = runner.invoke(app, ["prune", "shipping", "--data-dir", str(tmp_path)])
    assert bad_date.exit_code == 2 and "is not a date" in bad_date.output
    assert bad_service.exit_code == 2 and "unknown service 'shipping'" in bad_service.output
