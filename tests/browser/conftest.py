"""Browser tests: the app behind a real HTTP server, driven by the system's headless Chromium.

Chromium is the Debian package's `/usr/bin/chromium` (CHROMIUM_PATH to use another);
Playwright never downloads a browser here. Without Chromium these tests are skipped
loudly, and under CI=true they fail. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests import services

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        services.missing("Chromium", f"{CHROMIUM} is not there (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def live_server(app, live_process) -> Iterator[str]:
    """The session's app behind werkzeug's threaded HTTP server; its pages open their
    streams on the session's live process (another origin, as in the demo)."""
    app.config["LIVE_PUBLIC_URL"] = live_process.url
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app.config["LIVE_PUBLIC_URL"] = ""


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """Save the whole page as artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
