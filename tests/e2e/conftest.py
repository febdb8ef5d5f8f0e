"""Browser tests: headless Debian Chromium driven by playwright's sync API against live_server.

Playwright's sync API keeps an event loop running in the test thread, so Django's async-safety
check would refuse the database work these tests do in that thread (seeding, flushing).
DJANGO_ALLOW_ASYNC_UNSAFE lifts the check for this package only: set globally it would leak
into every subprocess the suite starts (and `check --deploy` warns about it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM

# Real Celery workers for the browser tests that follow runs (the fixtures of the worker tests).
from tests.integration.conftest import (  # noqa: F401
    celery_queue,
    celery_worker,
    celery_worker_env,
    celery_workers,
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set to a folder to keep a screenshot of every persona's home page (for looking at layouts).
SCREENSHOT_DIR = os.environ.get("STEWARD_E2E_SCREENSHOTS")


@pytest.fixture(scope="package", autouse=True)
def _allow_database_beside_playwright_loop():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(_allow_database_beside_playwright_loop):
    """One Chromium for the package, closed (and its event loop stopped) when it is done."""
    from tests.conftest import browser_problem

    if browser_problem():
        pytest.skip(browser_problem())  # the `browser` marker has already failed it under CI
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def open_page(browser, live_server):
    """A fresh browser context (no cookies) on the live server and a page in it;
    `page.console_errors` lists the console errors and uncaught exceptions the pages produced
    (CSP violations among them). Close the context when done."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.console_errors = errors
    return context, page


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def signed_in(browser, live_server, username: str):
    """(context, page) of a persona signed in with the demo password, for tests with several
    people at once."""
    from django.conf import settings

    context, page = open_page(browser, live_server)
    sign_in(page, username, settings.STEWARD_DEMO_PASSWORD)
    return context, page


@pytest.fixture
def page(browser, live_server):
    context, page = open_page(browser, live_server)
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"), full_page=True)
