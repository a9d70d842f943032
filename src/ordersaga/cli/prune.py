"""``ordersaga prune``: what the services prune in the background, now."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from ordersaga.cli.errors import database_failed
from ordersaga.cli.services import SomeService, chosen
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine, sqlite_url
from ordersaga.db.retention import prune_all
from ordersaga.db.timestamps import utc_now
from ordersaga.runtime.embedded import database_path
from ordersaga.services.registry import database_url, service_spec

console = Console()


async def _prune(service: str, url: str, settings: Settings) -> int:
    engine = make_engine(url)
    try:
        return await prune_all(engine, service_spec(service, settings).retention, utc_now())
    finally:
        await engine.dispose()


def prune_command(
    service: SomeService = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="An embedded system's data directory.")
    ] = None,
) -> None:
    """Delete what is past its retention: handled message ids older than
    ORDERSAGA_INBOX_RETENTION, sagas finished longer ago than ORDERSAGA_SAGA_RETENTION
    with their history (export them first with `ordersaga sagas export`). Orders are
    the business record and are kept. The services do the same in the background."""
    settings = Settings()
    for name in chosen(service):
        url = database_url(settings, name)
        if data_dir is not None:
            url = sqlite_url(database_path(data_dir, name))
        try:
            pruned = asyncio.run(_prune(name, url, settings))
        except (OSError, DBAPIError) as error:
            database_failed(name, url, error)
        console.print(f"{name}: {pruned} rows pruned")
