"""Browser tests: Playwright driving Debian's Chromium (never a browser Playwright downloads itself)
against the site served by pytest-django's live server, with the real worker behind it."""

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still
# synchronous, so Django's guard against async contexts would refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def site(live_server, worker):
    return live_server


@pytest.fixture
def shopper_page(browser, site, user):
    """A desktop page logged in as `user` (through the real login form)."""
    user.set_password("correct-horse-battery")
    user.save()
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    log_in(page, site.url, user.username)
    yield page
    context.close()


def log_in(page, base_url, username, password="correct-horse-battery"):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/checkout/$"))


def solve_captcha(page):
    """Read the question off the picture, as a person would, and answer it."""
    question = "".join(page.locator("svg.captcha text").all_text_contents())
    a, b = re.match(r"(\d+)\+(\d+)=\?", question.replace(" ", "")).groups()
    page.fill("#captcha", str(int(a) + int(b)))


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
