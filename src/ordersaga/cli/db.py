"""``ordersaga db upgrade|reset [SERVICE]`` and ``ordersaga seed [SERVICE]``.

They act on the databases named by the settings (``ORDERSAGA_<SERVICE>_DB_URL``), on
every service when none is given, and say what they did: upgrade and seed are safe to
run again and say so when there was nothing to do.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from alembic.script import ScriptDirectory
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from ordersaga.cli.errors import FAILED, USAGE, CommandGroup, database_failed, fail
from ordersaga.cli.services import SomeService, chosen
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.db.grants import grant_runtime
from ordersaga.db.migrate import (
    SchemaNotCurrent,
    alembic_config,
    current_revision,
    head_revision,
    seed,
    upgrade,
)
from ordersaga.runtime.scratch import delete_topics, recreate_databases
from ordersaga.services.registry import SERVICES, Service, service

console = Console()

db_app = typer.Typer(
    help="The services' databases: bring their schemas up to date, or start from empty.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)


Operation = Callable[[Service, Settings], Coroutine[Any, Any, str]]


@db_app.command("upgrade")
def upgrade_command(service: SomeService = None) -> None:
    """Migrate SERVICE's database schema (all of them when omitted) to the latest revision."""
    for found in _services(service):
        console.print(f"{found.name}: {_run(_upgrade, found)}")


def seed_command(service: SomeService = None) -> None:
    """Load the sample data into SERVICE's database (all when omitted) where it is empty."""
    for found in _services(service):
        console.print(f"{found.name}: {_run(_seed, found)}")


@db_app.command("reset")
def reset_command(
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete every order, saga, stock and balance.")
    ] = False,
) -> None:
    """Start from empty: drop and create again the four services' databases (no schema,
    no data) and delete the saga topics on Kafka. Then `ordersaga db upgrade` and
    `ordersaga seed` (`make infra-reset` does all three)."""
    settings = Settings()
    urls = {s.name: s.owner_url(settings) for s in SERVICES}
    if not yes:
        fail(
            "db reset deletes every order, saga, stock row and balance in "
            f"{', '.join(urls)} and the saga topics on {settings.kafka_bootstrap_servers}; "
            "run it again with --yes to do so",
            USAGE,
        )
    if any(url.startswith("sqlite") for url in urls.values()):
        fail(
            "db reset needs database servers; an embedded system starts from an empty --data-dir",
            USAGE,
        )
    for name, url in urls.items():
        try:
            asyncio.run(recreate_databases({name: url}))
        except (OSError, DBAPIError) as error:
            database_failed(name, url, error)
        console.print(f"{name}: database emptied (no schema)")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # reported below, in one line
    asyncio.run(delete_topics(settings))
    console.print(f"Kafka at {settings.kafka_bootstrap_servers}: saga topics deleted")
    console.print("next: `ordersaga db upgrade` and `ordersaga seed`")


async def _upgrade(found: Service, settings: Settings) -> str:
    url = found.owner_url(settings)
    before = await current_revision(url)
    await upgrade(found, url)
    login = await grant_runtime(url, found.database_url(settings))
    granted = f"; {login} may read and write its rows" if login else ""
    return _upgraded(found, before) + granted


def _upgraded(found: Service, before: str | None) -> str:
    head = head_revision(found)
    if before == head:
        return f"schema already at {head}, the latest"
    if before is None:
        base = ScriptDirectory.from_config(alembic_config(found)).get_base()
        return f"created schema {base}..{head}"
    return f"upgraded schema from {before} to {head}"


async def _seed(found: Service, settings: Settings) -> str:
    """Seed, and tell what the seed added by counting each table's rows around it."""
    url = found.owner_url(settings)
    if await current_revision(url) != head_revision(found):
        await seed(found, url)  # raises SchemaNotCurrent with its hint
    before = await _row_counts(found, url)
    await seed(found, url)
    after = await _row_counts(found, url)
    loaded = [f"{after[t] - before[t]} {t}" for t in after if after[t] != before[t]]
    if loaded:
        return "loaded " + ", ".join(loaded)
    if any(before.values()):
        return "left alone: data present"
    return "no sample data to load"


async def _row_counts(found: Service, url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                table.name: int(await conn.scalar(select(func.count()).select_from(table)) or 0)
                for table in found.metadata.sorted_tables
            }
    finally:
        await engine.dispose()


def _services(name: str | None) -> list[Service]:
    return [service(n) for n in chosen(name)]


def _run(operation: Operation, found: Service) -> str:
    """Run ``operation`` as the database's owner; a missing database or an old schema
    ends the command with a hint."""
    settings = Settings()
    url = found.owner_url(settings)
    try:
        return asyncio.run(operation(found, settings))
    except SchemaNotCurrent as error:
        fail(f"{found.name}: {error}", FAILED)
    except (OSError, DBAPIError) as error:
        database_failed(found.name, url, error)
