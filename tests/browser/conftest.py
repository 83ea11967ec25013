"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API against the
console served by uvicorn on 127.0.0.1, port 0, in a background thread."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from forecourt.edge.operators.totp import code_at
from tests.edge.app.world import ConsoleWorld, build_world, serve
from tests.edge.operators.conftest import Person

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where each main page's screenshot goes, for a person to look at the layout.
SHOTS = Path(os.environ.get("FORECOURT_SCREENSHOTS", tempfile.gettempdir())) / "forecourt-console"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Site:
    def __init__(self, world: ConsoleWorld, base: str, browser: Browser) -> None:
        self.world = world
        self.base = base
        self._browser = browser

    def page(self, viewport: tuple[int, int] = (1366, 900)) -> Page:
        context = self._browser.new_context(
            base_url=self.base, viewport={"width": viewport[0], "height": viewport[1]}
        )
        context.set_default_timeout(15_000)
        return context.new_page()

    def sign_in(self, page: Page, person: Person, step: int = -1) -> None:
        """Log in with the code of a neighbouring 30 s step (accepted as clock drift), so
        several codes of one person can be used within one real step without a replay."""
        page.goto("/login")
        page.get_by_label("Username").fill(person.operator.username)
        page.get_by_label("Password").fill(person.password)
        page.get_by_label("Authenticator code").fill(code(person, step))
        page.get_by_role("button", name="Sign in").click()

    def shot(self, page: Page, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def code(person: Person, step: int) -> str:
    return code_at(person.totp_secret, person.clock() + timedelta(seconds=30 * step))


@pytest.fixture
def site(tmp_path: Path, browser: Browser) -> Iterator[Site]:
    for world in build_world(tmp_path, real_time=True):
        with serve(world.app) as base:
            yield Site(world, base, browser)
