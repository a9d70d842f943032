"""``ordersaga outbox failed | requeue``: the messages the broker refused for good.

A relay moves a message the broker will never take (no write permission on its topic,
too large) out of the outbox into ``outbox_failed``, with the error. An operator lists
them, cures the cause, and puts them back at the end of the outbox.
"""

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.cli.errors import USAGE, CommandGroup, database_failed, fail
from ordersaga.cli.services import ServiceName, SomeService, chosen
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.messaging.outbox_rows import failed_table, requeue
from ordersaga.runtime.embedded import database_path
from ordersaga.services.registry import database_url, service_spec

T = TypeVar("T")

console = Console()

outbox_app = typer.Typer(
    help="Messages the broker refused for good: list them, put them back once cured.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)

DataDir = Annotated[Path | None, typer.Option(help="An embedded system's data directory.")]


def _on_database(
    service: str, data_dir: Path | None, action: Callable[[AsyncEngine], Awaitable[T]]
) -> T:
    url = database_url(Settings(), service)
    if data_dir is not None:
        url = sqlite_url(database_path(data_dir, service))

    async def run() -> T:
        engine = make_engine(url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (OSError, DBAPIError) as error:
        database_failed(service, url, error)


async def _failed_rows(service: str, engine: AsyncEngine) -> list[Any]:
    failed = failed_table(service_spec(service, Settings()).outbox)
    query = select(
        failed.c.id, failed.c.topic, failed.c.message_key, failed.c.failed_at, failed.c.error
    ).order_by(failed.c.id)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


@outbox_app.command("failed")
def failed_command(
    service: SomeService = None,
    data_dir: DataDir = None,
) -> None:
    """List the messages each service's relay could not publish, with the error."""
    table = RichTable("service", "id", "topic", "key", "failed at", "error")
    found = 0
    for name in chosen(service):
        for row in _on_database(name, data_dir, partial(_failed_rows, name)):
            found += 1
            table.add_row(
                name, str(row.id), row.topic, row.message_key, str(row.failed_at), escape(row.error)
            )
    if found:
        console.print(table)
    else:
        console.print("No failed messages.")


@outbox_app.command("requeue")
def requeue_command(
    service: ServiceName,
    ids: Annotated[list[int] | None, typer.Argument(help="The messages' ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every failed message.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Put failed messages back at the end of SERVICE's outbox, once their cause is
    cured; the running relay publishes them."""
    name = service
    if bool(ids) == every:
        fail("name the ids of the messages to put back, or --all", USAGE)
    outbox = service_spec(name, Settings()).outbox

    async def put_back(engine: AsyncEngine) -> int:
        async with engine.begin() as conn:
            return await requeue(conn, outbox, None if every else ids)

    count = _on_database(name, data_dir, put_back)
    console.print(f"{name}: {count} messages put back in the outbox")
