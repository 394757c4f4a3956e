"""The whole browser-to-backend path in headless Chromium: helper, example page, CORS, cookies, beacons.

The app runs in werkzeug's server on loopback, pointed at the ChatKit API stand-in. ChatKit's CDN script is
intercepted and replaced by tests/browser/chatkit-standin.js, an `<openai-chatkit>` that calls
getClientSecret (null, then the current secret) and dispatches ChatKit's events. Assertions are made on
the backend side: the stand-in's request log and the analytics tables.

Needs the `playwright` package and Debian's Chromium at /usr/bin/chromium (Playwright's own browser
download is not used); skips without them, fails instead in CI (CI=true).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy import Row, Table, select
from werkzeug.exceptions import NotFound
from werkzeug.middleware.shared_data import SharedDataMiddleware

from chatkit_backend.analytics.models import ERRORS, EVENTS
from chatkit_backend.frontend.routes import CHATKIT_SCRIPT_URL
from tests.browser_support import LiveServer, launch_chromium, require_playwright

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ASSETS = Path(__file__).parent / "browser"
STANDIN_ELEMENT = ASSETS / "chatkit-standin.js"
SESSIONS_PATH = "/v1/chatkit/sessions"
WAIT_MS = 10_000

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole module; each test gets its own context (cookies, storage)."""
    sync_playwright = require_playwright()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LiveServer]]:
    servers: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        servers.append(LiveServer(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _assets_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    return NotFound()(environ, start_response)


@pytest.fixture
def page_origin(serve) -> Callable[[], LiveServer]:
    """Start a server for tests/browser/ (the "other site's" pages): another origin than the backend."""
    return lambda: serve(SharedDataMiddleware(_assets_app, {"/": str(ASSETS)}, cache=False))


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, storage) for one test, without any request routing.

    While a route is active Playwright answers CORS preflights itself, so the cross-origin tests use no
    route at all: their page loads the ChatKit stand-in from its own origin.
    """
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def _open_page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.on("pageerror", lambda error: print(f"page error: {error}"))
    page.on("console", lambda message: print(f"console.{message.type}: {message.text}"))
    return page


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return _open_page(context)


def _open_example_page(context: BrowserContext) -> Page:
    """A page whose ChatKit CDN script is intercepted and answered with the stand-in element (same origin
    as the backend, so the route's preflight handling does not matter)."""
    context.route(
        CHATKIT_SCRIPT_URL,
        lambda route: route.fulfill(status=200, path=str(STANDIN_ELEMENT), content_type="text/javascript"),
    )
    return _open_page(context)


PAGES = {"same-origin": _open_example_page, "cross-origin": _open_page}


@pytest.fixture
def example_page(context: BrowserContext) -> Page:
    return _open_example_page(context)


@pytest.fixture
def backend_config(chatkit_config: dict[str, str]) -> dict[str, str]:
    return {**chatkit_config, "CHATKIT_EXAMPLE_PAGE": "true"}


# Helpers


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll (bounded) until `predicate()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def rows(app: Flask, table: Table) -> list[Row[Any]]:
    with app.extensions["chatkit_db"].engine.connect() as connection:
        return list(connection.execute(select(table).order_by(table.c.id)))


def at_least(app: Flask, table: Table, count: int) -> list[Row[Any]]:
    """Poll the table until it holds `count` rows; return them."""

    def enough() -> list[Row[Any]] | None:
        found = rows(app, table)
        return found if len(found) >= count else None

    return wait_for(enough, f"{count} rows in {table.name}")


def events_of(app: Flask, count: int) -> list[Row[Any]]:
    return at_least(app, EVENTS, count)


def errors_of(app: Flask, count: int) -> list[Row[Any]]:
    return at_least(app, ERRORS, count)


def chatkit_state(page: Page) -> dict[str, Any]:
    """Wait until the stand-in element got its two secrets or failed; return what it saw."""
    page.wait_for_selector("openai-chatkit[data-state]", state="attached")
    return page.eval_on_selector(
        "openai-chatkit",
        "el => ({state: el.dataset.state, secrets: el.secrets, failure: el.failure})",
    )


def emit(page: Page, name: str, detail: Any = None) -> None:
    page.eval_on_selector("openai-chatkit", "(el, [name, detail]) => el.emit(name, detail)", [name, detail])


def emit_chatkit_activity(page: Page) -> None:
    """What a short conversation makes ChatKit dispatch: a thread, one response, a log line, an error."""
    emit(page, "chatkit.thread.change", {"threadId": "cthr_browser1"})
    emit(page, "chatkit.response.start")
    emit(page, "chatkit.response.end")
    emit(page, "chatkit.log", {"name": "composer.submit", "data": {"length": 12}})
    page.eval_on_selector(
        "openai-chatkit", "el => el.emit('chatkit.error', {error: new Error('stand-in failure in the widget')})"
    )


def session_users(standin) -> list[str]:
    return [r.body["user"] for r in standin.requests_to(SESSIONS_PATH, "POST")]


def assert_one_identity_saw_everything(app: Flask, standin, secrets: list[str]) -> str:
    """Session and refresh for one user, the first session cancelled by the refresh, analytics and error
    rows tagged with that same user."""
    users = session_users(standin)
    assert len(users) == 2, users
    assert users[0] == users[1], "the refresh came from another identity than the session"
    first_session = next(s for s in standin.state.sessions.values() if s["client_secret"] == secrets[0])
    assert standin.requests_to(f"{SESSIONS_PATH}/{first_session['id']}/cancel", "POST"), "refresh did not replace"

    events = events_of(app, 4)
    assert [(e.kind, e.event) for e in events] == [
        ("thread_change", "thread.change"),
        ("message", "response.start"),
        ("message", "response.end"),
        ("log", "log"),
    ]
    assert events[0].thread_id == "cthr_browser1"
    assert events[1].thread_id == "cthr_browser1", "message events carry the current thread"
    assert events[3].name == "composer.submit"
    assert events[3].data == {"length": 12}
    assert {e.user_id for e in events} == {users[0]}

    (report,) = errors_of(app, 1)
    assert report.message == "Error: stand-in failure in the widget"
    assert report.component == "openai-chatkit"
    assert report.user_id == users[0]
    return users[0]


# Tests


def test_example_page_drives_session_refresh_analytics_and_errors_under_one_cookie_identity(
    make_app, backend_config, serve, context, example_page, chatkit_standin
):
    app = make_app(backend_config)
    backend = serve(app)
    page = example_page
    page.goto(f"{backend.url}/example")

    seen = chatkit_state(page)
    assert seen["state"] == "ready", seen
    assert all(secret.startswith("ek_") for secret in seen["secrets"])
    assert page.get_attribute("#status", "data-state") == "ready"
    cookies = [c for c in context.cookies() if c["name"] == "chatkit_uid"]
    assert len(cookies) == 1
    assert cookies[0]["httpOnly"]

    emit_chatkit_activity(page)
    page.goto("about:blank")  # pagehide: the queued analytics leave in a beacon, the error report in keepalive

    assert_one_identity_saw_everything(app, chatkit_standin, seen["secrets"])


def cross_origin_page(site: LiveServer, backend: LiveServer) -> str:
    # Another port is another origin (CORS applies) on the same site (the Lax cookie still goes along).
    return f"{site.url}/cross-origin.html?backend={quote(backend.url)}"


def test_cross_origin_page_with_credentials_from_an_allowed_origin(
    make_app, backend_config, serve, page_origin, page, chatkit_standin
):
    site = page_origin()
    app = make_app(backend_config, CORS_ORIGINS=site.url)
    backend = serve(app)

    page.goto(cross_origin_page(site, backend))
    seen = chatkit_state(page)
    assert seen["state"] == "ready", seen

    emit_chatkit_activity(page)
    page.evaluate("() => window.backend.flush()")
    assert_one_identity_saw_everything(app, chatkit_standin, seen["secrets"])


def test_cross_origin_page_from_an_origin_not_allowed_gets_a_network_error_and_no_session(
    make_app, backend_config, serve, page_origin, page, chatkit_standin
):
    allowed, other = page_origin(), page_origin()
    app = make_app(backend_config, CORS_ORIGINS=allowed.url)
    backend = serve(app)

    page.goto(cross_origin_page(other, backend))
    seen = chatkit_state(page)

    assert seen["state"] == "failed", seen
    assert seen["failure"]["code"] == "network_error"
    assert seen["failure"]["status"] == 0
    # The preflight was refused, so no POST ran: no session upstream, no error report stored.
    assert session_users(chatkit_standin) == []
    assert rows(app, ERRORS) == []


@pytest.mark.parametrize(
    ("config", "fault", "status", "code"),
    [
        pytest.param(
            {"CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS": "1/minute"}, None, 429, "rate_limited", id="429-rate-limited"
        ),
        pytest.param({"OPENAI_API_KEY": ""}, None, 503, "not_configured", id="503-not-configured"),
        pytest.param({}, {"status": 429, "times": 5}, 503, "upstream_rate_limited", id="503-upstream-rate-limited"),
    ],
)
def test_a_backend_error_reaches_the_page_as_a_coded_error(
    make_app, backend_config, serve, example_page, chatkit_standin, config, fault, status, code
):
    app = make_app(backend_config | config)
    backend = serve(app)
    if fault:
        chatkit_standin.inject("status", path_prefix=SESSIONS_PATH, **fault)
    page = example_page

    page.goto(f"{backend.url}/example")
    seen = chatkit_state(page)

    assert seen["state"] == "failed", seen
    failure = seen["failure"]
    assert failure["name"] == "ChatKitBackendError"
    assert (failure["status"], failure["code"]) == (status, code)
    assert failure["requestId"]
    assert page.get_attribute("#status", "data-code") == code
    # ChatKit's chatkit.error went on to /api/errors with the code (the request id is there too, but the
    # analytics scrubber redacts it as a long hex token).
    (report,) = errors_of(app, 1)
    assert report.message.startswith("ChatKitBackendError: ")
    assert report.context["code"] == code
    assert report.context["status"] == status


@pytest.mark.parametrize("origin", ["same-origin", "cross-origin"])
def test_events_queued_before_the_page_is_hidden_arrive(
    make_app, backend_config, serve, page_origin, context, chatkit_standin, origin
):
    if origin == "same-origin":  # sent with navigator.sendBeacon
        app = make_app(backend_config)
        backend = serve(app)
        url = f"{backend.url}/example"
    else:  # sent with fetch(..., {keepalive: true}) after a CORS preflight
        site = page_origin()
        app = make_app(backend_config, CORS_ORIGINS=site.url)
        backend = serve(app)
        url = cross_origin_page(site, backend)
    page = PAGES[origin](context)
    page.goto(url)
    assert chatkit_state(page)["state"] == "ready"
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if r.url.endswith("/api/analytics/events") else None)

    count = 7  # fewer than a batch: all of them wait in the queue (the flush timer is 5 s away)
    for n in range(count):
        emit(page, "chatkit.thread.change", {"threadId": f"cthr_hidden{n}"})
    assert sent == [], "the helper sent before the page was hidden"
    page.goto("about:blank")

    events = events_of(app, count)
    assert [e.thread_id for e in events] == [f"cthr_hidden{n}" for n in range(count)]
    assert {e.user_id for e in events} == set(session_users(chatkit_standin))
