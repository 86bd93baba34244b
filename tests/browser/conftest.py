"""Browser tests: Playwright driving Debian's Chromium (never a browser Playwright downloads itself)
against the site served by pytest-django's live server, with the real worker behind it."""

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import CAPTCHA_TEST_ANSWER

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still
    # synchronous, so Django's guard against async contexts would refuse them. Only while browsing:
    # subprocesses started by other tests must not inherit it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                # A headless page counts as hidden: without these its timers (htmx delays) are throttled.
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
            ],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def site(live_server, worker):
    return live_server


@pytest.fixture
def open_page(browser, site, user):
    """Open a page logged in as `user` (through the real login form) at a viewport and in a language."""
    user.set_password("correct-horse-battery")
    user.save()
    contexts = []

    def open_(viewport=DESKTOP, locale="en-US"):
        context = browser.new_context(viewport=viewport, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        log_in(page, site.url, user.username)
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def shopper_page(open_page):
    return open_page()


def log_in(page, base_url, username, password="correct-horse-battery"):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/checkout/$"))


def solve_captcha(page):
    """Answer through the captcha's test-only mode (tests/conftest.py): the picture cannot be read by a test."""
    page.fill("#captcha", CAPTCHA_TEST_ANSWER)


def screenshot(page, name):
    """Save docs/screenshots/<name>-<width>.png when SCREENSHOTS=1 (the README shows the committed ones)."""
    if os.environ.get("SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


@pytest.fixture
def paused_worker(worker):
    """Hold the worker back from consuming, to look at a batch while it is still placing.

    A remote-control broadcast is fire-and-forget (Redis pub/sub keeps nothing for a subscriber that is busy
    reconnecting), so the command is repeated until the worker itself reports the queues it consumes from.
    """
    from django.conf import settings

    from config.celery import app as celery_app

    queue_names = {queue.name for queue in settings.CELERY_TASK_QUEUES}

    def consumed_queues() -> set[str] | None:
        replies = celery_app.control.inspect(destination=[worker.hostname], timeout=2).active_queues() or {}
        queues = replies.get(worker.hostname)
        return None if queues is None else {queue["name"] for queue in queues}

    def set_consuming(consuming: bool):
        wanted = queue_names if consuming else set()
        deadline = time.monotonic() + 30
        while (consumed := consumed_queues()) is None or consumed & queue_names != wanted:
            if time.monotonic() > deadline:
                pytest.fail(f"the worker still consumes from {consumed} after 30 s of asking for {wanted or 'none'}")
            for name in queue_names:
                if consuming:
                    celery_app.control.add_consumer(name, destination=[worker.hostname], reply=True, timeout=2)
                else:
                    celery_app.control.cancel_consumer(name, destination=[worker.hostname], reply=True, timeout=2)

    set_consuming(False)
    try:
        yield lambda: set_consuming(True)
    finally:
        set_consuming(True)


@pytest.fixture(autouse=True)
def _discounts(carrier_discounts):
    pass
