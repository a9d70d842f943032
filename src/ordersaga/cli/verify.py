"""``ordersaga verify``: the design's invariants, against the databases."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ordersaga.cli.errors import USAGE, fail
from ordersaga.cli.json_output import JsonFlag, echo_json
from ordersaga.cli.tables import checks_table
from ordersaga.config import Settings
from ordersaga.db.engine import make_engine
from ordersaga.runtime.embedded import database_path, embedded_engines
from ordersaga.services.registry import SERVICES
from ordersaga.tools.verify import verify

console = Console()


def verify_command(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Check the embedded system's databases under this directory "
            "instead of the configured ones.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the design's invariants against the databases; exit 1 if one fails."""
    if data_dir is not None and not database_path(data_dir, "order").exists():
        fail(f"no embedded system's data under {data_dir.resolve()}", USAGE)
    settings = Settings()

    async def run() -> bool:
        if data_dir is not None:
            engines = embedded_engines(data_dir)
        else:
            engines = {s.name: make_engine(s.database_url(settings)) for s in SERVICES}
        try:
            checks = await verify(engines, one_run=True)
        finally:
            for engine in engines.values():
                await engine.dispose()
        ok = all(c.ok for c in checks)
        if as_json:
            echo_json({"ok": ok, "checks": checks})
        else:
            console.print(checks_table(checks))
        return ok

    raise typer.Exit(0 if asyncio.run(run()) else 1)
