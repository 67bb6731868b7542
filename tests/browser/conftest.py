"""A real Chromium driven by Playwright against pytest-django's live server.

Chromium comes from the system (/usr/bin/chromium); Playwright's own browser download is not
used. Without it these tests skip, or fail under ANNOTATOR_REQUIRE_SERVICES=1.
"""

import os
import time
from pathlib import Path

import pytest

from tests.conftest import services_required

CHROMIUM = Path(os.environ.get("ANNOTATOR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's database calls are
    # still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def wait_until(page, expression: str, *, timeout: float = 15_000) -> None:
    """Waits until ``expression`` is truthy in the page. Playwright's own wait_for_function builds
    its predicate with ``new Function`` inside the page, which the pages' Content-Security-Policy
    (no 'unsafe-eval') refuses; ``page.evaluate`` runs outside that policy."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:g} s: {expression}")
        page.wait_for_timeout(100)
