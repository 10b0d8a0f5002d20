"""Browser tests: Playwright drives Debian's Chromium (headless, no sandbox) against a real Uvicorn.

Set SILVERFLOW_TEST_BROWSER=required (CI does) to fail instead of skipping when Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.live_app import Api, live_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("SILVERFLOW_TEST_BROWSER") == "required":
            pytest.fail("Chromium is required for the browser tests but is not installed")
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Api]:
    with live_app(sqlite_url) as running:
        yield running


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="de-DE")
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
