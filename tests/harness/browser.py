"""Real-browser fixtures for the web UI: a real ``artdag daemon`` with a password, Debian's
Chromium driven by Playwright's sync API, and a screenshot helper.

Playwright's own browser download does not work here, so :func:`launch_chromium` points
Playwright at the system Chromium (``/usr/bin/chromium``, apt package ``chromium``, installed
by ``scripts/install-test-peers.sh``) through ``executable_path``, headless, with the flags
``--disable-background-networking`` and its companions: without them Chromium floods a closed
network with connection attempts. ``BrowserType.launch`` gives every run a fresh temporary profile
(``--user-data-dir``), and every :meth:`Browser.new_context` is a cookie-less, isolated session.

The sync API is used from plain (non-async) tests: pytest-trio runs only the async tests, and
Playwright's async API would need asyncio.

:func:`require_chromium` skips when Chromium or the ``playwright`` package is absent and ``CI``
is unset; under ``CI`` a missing browser is a failure.

Screenshots go to ``$ARTDAG_TEST_OUTPUT/screenshots`` (default ``<repo>/test-output``), named
``NN-page.png``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness.web_daemons import OWNER_PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PageProblem",
    "Screenshots",
    "chromium_problem",
    "launch_chromium",
    "log_in",
    "require_chromium",
    "screenshot_dir",
]

REPO = Path(__file__).resolve().parents[2]
#: Debian's Chromium; ARTDAG_CHROMIUM points the tests at another Chromium binary.
CHROMIUM = Path(os.environ.get("ARTDAG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "run `scripts/install-test-peers.sh` as root (apt-get install chromium)"


def chromium_problem() -> str | None:
    """None if the browser tests can run; else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the `playwright` Python package is not installed (pip install playwright)"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM}: {INSTALL_HINT}"
    return None


def require_chromium() -> None:
    """Skip (not under CI) or fail (under CI) unless Playwright can drive Chromium."""
    problem = chromium_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Headless system Chromium under Playwright (fresh profile per launch)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Page, base_url: str, password: str = OWNER_PASSWORD) -> Response | None:
    """Log in through the login form; returns the response of the form's POST."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=password]", password)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("form[action$='/login'] button[type=submit]")
    page.wait_for_load_state()
    return posted.value


def screenshot_dir() -> Path:
    """``$ARTDAG_TEST_OUTPUT/screenshots`` (default ``<repo>/test-output/screenshots``)."""
    root = Path(os.environ.get("ARTDAG_TEST_OUTPUT") or REPO / "test-output")
    path = root / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class PageProblem(AssertionError):
    """A page answered with a server error or the error template."""


_STUB = re.compile(r"\bnot yet\b", re.IGNORECASE)


@dataclass
class Screenshots:
    """Full-page PNGs ``NN-name.png`` in order; ``check`` refuses error pages.

    A page "errors" when it answers HTTP >= 500, or any status other than the expected one,
    or shows the error template (``<p class="error" role="alert">`` as its message) without
    being expected to. A stub page (the error template saying "not yet", HTTP 200) is
    recorded in ``stubs`` instead, so screenshots keep working while pages are written.
    """

    directory: Path
    taken: list[Path] = field(default_factory=list)
    stubs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for old in self.directory.glob("[0-9][0-9]-*.png"):  # a previous run's pictures
            old.unlink()

    def take(self, page: Page, name: str) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path

    def visit(
        self,
        page: Page,
        url: str,
        name: str,
        *,
        status: int = 200,
        error_expected: bool = False,
    ) -> Path:
        """Open ``url``, check it is not an error page, and take its screenshot."""
        response = page.goto(url)
        assert response is not None, f"no response for {url}"
        page.wait_for_load_state("load")
        self.check(page, response.status, url, status=status, error_expected=error_expected)
        return self.take(page, name)

    def check(
        self,
        page: Page,
        got: int,
        url: str,
        *,
        status: int = 200,
        error_expected: bool = False,
    ) -> None:
        if got >= 500 or got != status:
            raise PageProblem(f"{url} answered HTTP {got} (expected {status})")
        alert = page.locator("main p.error[role=alert]")
        if alert.count() and not error_expected:
            text = alert.first.inner_text()
            if got == 200 and _STUB.search(text):
                self.stubs.append(f"{url}: {text}")
                return
            raise PageProblem(f"{url} shows an error: {text}")
