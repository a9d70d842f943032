"""The console's page as the admin app serves it: every asset from the package itself,
nothing from another host, every module it imports there."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ordersaga.runtime.embedded import EmbeddedSystem
from ordersaga.services.orchestrator.console import ASSETS

# An address on another host: a CDN, a web font, an analytics script.
ELSEWHERE = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)
IMPORTED = re.compile(r"""^import .* from "(?P<module>[^"]+)";$""", re.MULTILINE)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with EmbeddedSystem(tmp_path) as system:
        transport = httpx.ASGITransport(app=system.admin_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as http:
            yield http


async def test_the_console_is_served_at_console(admin: httpx.AsyncClient) -> None:
    redirected = await admin.get("/console")
    assert redirected.status_code == 307
    assert redirected.headers["location"] == "http://admin/console/"
    page = await admin.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js"></script>' in page.text
    assert '<link rel="stylesheet" href="app.css">' in page.text


@pytest.mark.parametrize(
    ("suffix", "content_type"), [(".js", "text/javascript"), (".css", "text/css")]
)
async def test_every_asset_is_served_with_its_type(
    admin: httpx.AsyncClient, suffix: str, content_type: str
) -> None:
    assets = sorted(ASSETS.glob(f"*{suffix}"))
    assert assets
    for asset in assets:
        served = await admin.get(f"/console/{asset.name}")
        assert served.status_code == 200, asset.name
        assert served.headers["content-type"].startswith(content_type), asset.name
        assert served.text == asset.read_text()


def test_no_asset_comes_from_another_host() -> None:
    for asset in ASSETS.iterdir():
        found = ELSEWHERE.findall(asset.read_text())
        assert not found, f"{asset.name} refers to another host: {found}"


def test_every_module_imported_is_shipped() -> None:
    for script in ASSETS.glob("*.js"):
        for module in IMPORTED.findall(script.read_text()):
            assert module.startswith("./"), f"{script.name} imports {module}: not a local module"
            assert (ASSETS / module).is_file(), f"{script.name} imports {module}: not shipped"
