"""Fixtures for browser tests: the app served on loopback in a thread, a headless Chromium, a phone-sized page.

Chromium is Debian's (/usr/bin/chromium, installed by `scripts/setup --test`); Playwright for Python drives it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import ROOT

CHROMIUM = os.environ.get("HALL_CHROMIUM", "/usr/bin/chromium")
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2,
         "locale": "zh-CN"}
DESKTOP = {"viewport": {"width": 1366, "height": 768}, "locale": "zh-CN"}


@pytest.fixture(scope="session")
def live_server(app):
    """The base URL of the app served by a real HTTP server on 127.0.0.1 (any free port)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (scripts/setup --test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        yield chromium
        chromium.close()


def _pages(browser, options: dict):
    """A factory of pages, each in a fresh browser context (own cookies), closed at the end."""
    contexts = []

    def open_page():
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    return open_page, contexts


@pytest.fixture
def phone(browser):
    """A fresh phone-sized browser context (own cookies); call it again for a second person."""
    open_page, contexts = _pages(browser, PHONE)
    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def desktop(browser):
    """A fresh desktop-sized browser context (own cookies), Chinese like the phone one."""
    open_page, contexts = _pages(browser, DESKTOP)
    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("HALL_SCREENSHOTS") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
