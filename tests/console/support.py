"""A real browser (Debian's chromium under Playwright) on the real app over the demo, for the console tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from mcp_acl.app import create_app
from mcp_acl.cli.quickstart import DEMO_PASSWORDS, set_demo_passwords
from tests.auth.support import LoopbackServer
from tests.support.demo_gateway import Demo, make_demo

CHROMIUM = os.environ.get("MCP_ACL_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("MCP_ACL_REQUIRE_BROWSER") == "1"
# Where screenshots go when asked (e.g. docs/images); otherwise into the test's temporary folder.
SCREENSHOTS = os.environ.get("MCP_ACL_CONSOLE_SCREENSHOTS")


def require_browser() -> None:
    """Skip (or in CI, fail) when there is no chromium or no Playwright."""
    problem = None
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        problem = f"the console tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            problem = "the console tests need Playwright for Python (pip install playwright)"
    if problem:
        if REQUIRE_BROWSER:
            pytest.fail(f"MCP_ACL_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)


@dataclass
class Served:
    """The demo, served on loopback, with its base URL and the app (for its session manager)."""

    world: Demo
    base: str
    app: object


@asynccontextmanager
async def served_demo(database_url: str) -> AsyncIterator[Served]:
    world = make_demo(database_url)
    set_demo_passwords(world.engine)
    app = create_app(world.settings, world.engine)
    server = LoopbackServer(app, lifespan="on")
    base = await anyio.to_thread.run_sync(server.__enter__)
    try:
        yield Served(world, base, app)
    finally:
        await anyio.to_thread.run_sync(server.__exit__, None, None, None)
        world.engine.dispose()


@asynccontextmanager
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        # The system's chromium; --no-sandbox because the tests may run as root.
        chrome = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chrome
        finally:
            await chrome.close()


async def sign_in(page, base: str, user: str, password: str | None = None, goto: str = "/admin/") -> None:
    """Sign in to the console through the embedded issuer's own pages (password, then consent)."""
    page.set_default_timeout(15_000)
    await page.goto(base + goto)
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password or DEMO_PASSWORDS[user])
    await page.click("button[type=submit]")
    await page.click("button[value=allow]")
    await page.wait_for_load_state()


def screenshot_path(tmp_path: Path, name: str) -> str:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"console-{name}.png")
