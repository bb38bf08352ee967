"""Debian's Chromium, driven by the playwright package: how the browser tests start it.

Runs in the pytest process. Never `playwright install`: that downloads a browser of its
own; we use the system's /usr/bin/chromium, headless, with nothing phoning home.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the session; closed (and its processes gone) on exit."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageErrors:
    """Everything the page complained about: console errors and uncaught exceptions."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._pageerror)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.messages.append(f"console: {msg.text} at {msg.location}")

    def _pageerror(self, err: Error) -> None:
        self.messages.append(f"pageerror: {err}")


def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_offline(page: Page, path: Path) -> list[str]:
    """Open the file at `path` with every other request refused (a replay must need
    nothing else); the URLs the page asked for, as it asks for them."""
    requested: list[str] = []

    def only_the_file(route: Any) -> None:
        requested.append(route.request.url)
        if route.request.url == path.as_uri():
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_file)
    page.goto(path.as_uri())
    return requested
