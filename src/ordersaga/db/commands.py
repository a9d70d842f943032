"""``ordersaga db upgrade [SERVICE]`` and ``ordersaga seed [SERVICE]``.

Both act on the databases named by the settings (``ORDERSAGA_<SERVICE>_DB_URL``), on
all four services when none is given, and are safe to run again.
"""

import asyncio
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ordersaga.config import Settings
from ordersaga.db.migrate import SchemaNotCurrent, head_revision, seed, upgrade

console = Console()

db_app = typer.Typer(
    help="The services' databases: bring their schemas up to date.",
    no_args_is_help=True,
    add_completion=False,
)


class Service(StrEnum):
    order = "order"
    orchestrator = "orchestrator"
    stock = "stock"
    payment = "payment"


ServiceArgument = Annotated[
    Service | None,
    typer.Argument(help="The service whose database to act on; all four when omitted."),
]

Operation = Callable[[str, str], Coroutine[Any, Any, None]]


@db_app.command("upgrade")
def upgrade_command(service: ServiceArgument = None) -> None:
    """Migrate the schema of SERVICE's database (all four when omitted) to the latest revision."""
    for name, url in _databases(service):
        _run(upgrade, name, url)
        console.print(f"{name}: schema at revision {head_revision(name)}, the latest")


def seed_command(service: ServiceArgument = None) -> None:
    """Load the sample data into SERVICE's database (all four when omitted) where it is empty."""
    for name, url in _databases(service):
        _run(seed, name, url)
        console.print(f"{name}: sample data in place")


def _databases(service: Service | None) -> list[tuple[str, str]]:
    settings = Settings()
    names = [service.value] if service is not None else [s.value for s in Service]
    return [(name, settings.database_url(name)) for name in names]


def _run(operation: Operation, service: str, url: str) -> None:
    """Run ``operation``; a missing database or an old schema ends the command with a hint."""
    where = make_url(url).render_as_string(hide_password=True)
    try:
        asyncio.run(operation(service, url))
    except SchemaNotCurrent as error:
        console.print(f"[red]{service}: {error}[/]")
        raise typer.Exit(1) from None
    except (OSError, DBAPIError) as error:
        # The driver's own message says what went wrong, without SQLAlchemy's SQL echo.
        reason = error.orig if isinstance(error, DBAPIError) else error
        console.print(
            f"[red]{service}: the database at {where} failed: {reason}\n"
            "Is it running and reachable (`make infra-up`), and is "
            f"ORDERSAGA_{service.upper()}_DB_URL right?[/]"
        )
        raise typer.Exit(1) from None
