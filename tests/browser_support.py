"""Headless Chromium (Debian's, driven by Playwright) and a live WSGI server for the browser tests.

Playwright's own browser download does not work here: the tests launch /usr/bin/chromium. Without it,
or without the playwright package, browser tests skip with the reason, and fail instead in CI.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def require_playwright() -> Any:
    """`playwright.sync_api.sync_playwright`, or skip (fail in CI) when it or Chromium is missing."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        reason = "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if reason:
        message = f"{reason}; the browser tests need it (CI installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, with the flags this machine needs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class LiveServer:
    """A WSGI app in werkzeug's threaded server on a free loopback port, in a background thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self._server = make_server(host, 0, app, threaded=True)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
