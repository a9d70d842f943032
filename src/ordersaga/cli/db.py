"""``ordersaga db upgrade [SERVICE]`` and ``ordersaga seed [SERVICE]``.

Both act on the databases named by the settings (``ORDERSAGA_<SERVICE>_DB_URL``), on
every service when none is given, and are safe to run again.
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ordersaga.cli.services import SomeService, chosen
from ordersaga.config import Settings
from ordersaga.db.migrate import SchemaNotCurrent, head_revision, seed, upgrade
from ordersaga.services.registry import Service, service

console = Console()

db_app = typer.Typer(
    help="The services' databases: bring their schemas up to date.",
    no_args_is_help=True,
    add_completion=False,
)


Operation = Callable[[Service, str], Coroutine[Any, Any, None]]


@db_app.command("upgrade")
def upgrade_command(service: SomeService = None) -> None:
    """Migrate SERVICE's database schema (all of them when omitted) to the latest revision."""
    for found in _services(service):
        _run(upgrade, found)
        console.print(f"{found.name}: schema at revision {head_revision(found)}, the latest")


def seed_command(service: SomeService = None) -> None:
    """Load the sample data into SERVICE's database (all when omitted) where it is empty."""
    for found in _services(service):
        _run(seed, found)
        console.print(f"{found.name}: sample data in place")


def _services(name: str | None) -> list[Service]:
    return [service(n) for n in chosen(name)]


def _run(operation: Operation, found: Service) -> None:
    """Run ``operation``; a missing database or an old schema ends the command with a hint."""
    url = found.database_url(Settings())
    where = make_url(url).render_as_string(hide_password=True)
    try:
        asyncio.run(operation(found, url))
    except SchemaNotCurrent as error:
        console.print(f"[red]{found.name}: {error}[/]")
        raise typer.Exit(1) from None
    except (OSError, DBAPIError) as error:
        # The driver's own message says what went wrong, without SQLAlchemy's SQL echo.
        reason = error.orig if isinstance(error, DBAPIError) else error
        console.print(
            f"[red]{found.name}: the database at {where} failed: {reason}\n"
            "Is it running and reachable (`make infra-up`), and is "
            f"{found.url_variable} right?[/]"
        )
        raise typer.Exit(1) from None
