"""A real headless Chromium (Debian's ``chromium``), driven by Playwright, for the page tests.

The browser is Debian's package, not one Playwright downloads: our machines reach only the
package registries. A missing ``chromium`` is installed on a fresh machine of ours (Debian, as
root); anywhere else these tests fail naming what to install. They are never skipped.

Playwright's synchronous API runs its own event loop, so the page tests are plain (sync)
tests; the sandbox they look at runs in a thread (``audian_sandbox_server``). Each test's last
screen is saved as a screenshot under ``AUDIAN_TEST_ARTIFACTS`` (default ``.artifacts/``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from ..debian import debian_program

ARTIFACTS = Path(os.environ.get("AUDIAN_TEST_ARTIFACTS", ".artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module (Playwright's loop must not outlive the module)."""
    executable = debian_program("chromium", "chromium", needed_by="the browser tests")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox refuses to start.
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page (own context); its last screen (the viewport) is saved as ``<test>.png``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        tab.screenshot(path=ARTIFACTS / f"{name}.png")
        context.close()
