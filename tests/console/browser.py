"""Debian's chromium driven by Playwright, for the console's tests: never a downloaded browser."""

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

CHROMIUM: Final = Path("/usr/bin/chromium")
ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: Final = ViewportSize(width=1366, height=768)
PHONE: Final = ViewportSize(width=390, height=844)
SCREENSHOTS: Final = Path(__file__).resolve().parents[2] / ".cache" / "console-screenshots"
"""Where the screenshots are copied, to look at after a run (git-ignored)."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The machine's chromium, headless; the test fails, saying how to install it, if it is
    missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the console's browser tests drive Debian's chromium, and {CHROMIUM} is not "
            "there: install it with `bash infra/test-tools.sh` (apt-get install chromium; "
            "`make test` does it)"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def console_page(browser: Browser, viewport: ViewportSize = LAPTOP) -> AsyncIterator[Page]:
    """A page whose script errors fail the test when it closes."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"the console's script failed: {errors}"


async def screenshot(page: Page, directory: Path, name: str) -> Path:
    """The whole page as ``directory/name.png``, copied under :data:`SCREENSHOTS` too."""
    path = directory / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)
    return path
