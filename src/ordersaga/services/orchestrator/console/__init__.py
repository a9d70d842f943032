"""The saga console: a web page over the admin API, served by the same process at ``/console``.

Its assets (``assets/``: HTML, CSS and plain ES modules) ship inside the package, so the
page needs no build step, no CDN and no network beyond the process that serves it; every
figure it shows comes from the admin API (``/admin/v1``), which it polls every 2 seconds
on the overview and on an open saga.
"""

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

ASSETS: Final = Path(__file__).with_name("assets")
CONSOLE_PATH: Final = "/console"


def mount_console(app: FastAPI, path: str = CONSOLE_PATH) -> None:
    """Serve the console's page at ``path`` (``/console`` is redirected to ``/console/``)."""
    app.mount(path, StaticFiles(directory=ASSETS, html=True), name="console")
