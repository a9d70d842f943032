"""``ordersaga outbox failed | requeue`` on an embedded system's databases."""

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from ordersaga.cli.app import app
from ordersaga.config import Settings
from ordersaga.db.engine import create_schema, make_engine, sqlite_url
from ordersaga.messaging.outbox import write_outbox
from ordersaga.messaging.outbox_rows import claim, failed_table, park, remove
from ordersaga.messaging.port import OutgoingMessage
from ordersaga.runtime.embedded import database_path
from ordersaga.services.payment.tables import outbox
from ordersaga.services.registry import service_spec

CLI_ENV = {"COLUMNS": "200"}


async def park_two(data_dir: Path) -> list[int]:
    """Two messages of the payment service refused for good; their outbox ids."""
    engine = make_engine(sqlite_url(database_path(data_dir, "payment")))
    await create_schema(engine, service_spec("payment", Settings()).metadata)
    async with engine.begin() as conn:
        await write_outbox(
            conn,
            outbox,
            [
                OutgoingMessage("payment-processed", f"k{i}", b"{}", {"message-id": f"m{i}"})
                for i in range(2)
            ],
        )
        rows = await claim(conn, outbox, 10)
        await park(conn, outbox, rows, {r.id: "TopicAuthorizationFailedError" for r in rows})
        await remove(conn, outbox, rows)
    await engine.dispose()
    return [r.id for r in rows]


async def counts(data_dir: Path) -> tuple[int, int]:
    engine = make_engine(sqlite_url(database_path(data_dir, "payment")))
    async with engine.connect() as conn:
        waiting = await conn.scalar(select(func.count()).select_from(outbox))
        failed = await conn.scalar(select(func.count()).select_from(failed_table(outbox)))
    await engine.dispose()
    return int(waiting or 0), int(failed or 0)


def test_failed_messages_are_listed_and_put_back(tmp_path: Path) -> None:
    ids = asyncio.run(park_two(tmp_path))
    runner = CliRunner()

    listed = runner.invoke(
        app, ["outbox", "failed", "payment", "--data-dir", str(tmp_path)], env=CLI_ENV
    )
    assert listed.exit_code == 0, listed.output
    assert "TopicAuthorizationFailedError" in listed.output
    assert "payment-processed" in listed.output

    one = runner.invoke(
        app, ["outbox", "requeue", "payment", str(ids[0]), "--data-dir", str(tmp_path)]
    )
    assert one.exit_code == 0 and "1 messages put back" in one.output
    assert asyncio.run(counts(tmp_path)) == (1, 1)

    rest = runner.invoke(
        app, ["outbox", "requeue", "payment", "--all", "--data-dir", str(tmp_path)]
    )
    assert rest.exit_code == 0 and "1 messages put back" in rest.output
    assert asyncio.run(counts(tmp_path)) == (2, 0)


def test_requeue_needs_ids_or_all(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["outbox", "requeue", "payment", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--all" in result.output
