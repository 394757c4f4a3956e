"""Upstream faults on every route that calls ChatKit: each ends in its mapped error within the configured bound.

The per-row mapping for session creation is in tests/test_upstream.py; this file plays the whole fault
set (hang, drip, reset, refused, 5xx bursts, HTML with 200, 429 with Retry-After) on the thread routes and
refresh as well, and measures wall time against the client's documented bound:
max(CHATKIT_CONNECT_TIMEOUT + CHATKIT_READ_TIMEOUT, CHATKIT_RETRY_BUDGET_SECONDS).
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import free_port

CONNECT, READ, BUDGET = 0.5, 0.6, 1.5
BOUND = max(CONNECT + READ, BUDGET)
# Time for the app itself around the upstream call (SQLite, Flask) on a slow CI machine.
SLACK = 1.0

FAULTS = {
    "hang": ({"kind": "hang", "seconds": 5, "times": 20}, 504, "upstream_timeout"),
    "drip": ({"kind": "drip", "seconds": 0.2, "times": 20}, 504, "upstream_timeout"),
    "reset": ({"kind": "reset", "times": 20}, 502, "upstream_unreachable"),
    "burst-500": ({"kind": "status", "status": 500, "times": 20}, 502, "upstream_error"),
    "burst-502": ({"kind": "status", "status": 502, "times": 20}, 502, "upstream_error"),
    "burst-503": ({"kind": "status", "status": 503, "times": 20}, 502, "upstream_error"),
    "html-200": ({"kind": "html", "times": 20}, 502, "upstream_invalid_response"),
    "429-retry-after": (
        {"kind": "status", "status": 429, "retry_after": "7", "times": 20},
        503,
        "upstream_rate_limited",
    ),
}


def _routes(client, standin):
    """(name, call) for each route that reaches ChatKit; each call returns the response."""
    thread = standin.add_thread("nobody-in-particular")
    return {
        "create": lambda: client.post("/api/chatkit/session"),
        "refresh": lambda: client.post("/api/chatkit/refresh", json={"client_secret": "ek_not_known_here"}),
        "list-threads": lambda: client.get("/api/chatkit/threads"),
        "delete-thread": lambda: client.delete(f"/api/chatkit/threads/{thread}"),
    }


@pytest.fixture
def fault_app(make_app, chatkit_config):
    return make_app(
        chatkit_config,
        CHATKIT_CONNECT_TIMEOUT=str(CONNECT),
        CHATKIT_READ_TIMEOUT=str(READ),
        CHATKIT_RETRY_BUDGET_SECONDS=str(BUDGET),
        CHATKIT_SESSION_RATE_LIMIT="1000/minute",
        CHATKIT_THREADS_RATE_LIMIT="1000/minute",
    )


def _assert_mapped(response, status: int, code: str, elapsed: float) -> None:
    assert elapsed < BOUND + SLACK, f"took {elapsed:.2f} s, bound {BOUND} s"
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["request_id"]
    if code == "upstream_rate_limited":
        assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("route", ["create", "refresh", "list-threads", "delete-thread"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_ends_in_its_mapped_error_within_the_bound(fault_app, chatkit_standin, route, fault):
    options, status, code = FAULTS[fault]
    client = fault_app.test_client()
    call = _routes(client, chatkit_standin)[route]
    chatkit_standin.inject(options["kind"], **{k: v for k, v in options.items() if k != "kind"})
    started = time.monotonic()
    response = call()
    _assert_mapped(response, status, code, time.monotonic() - started)


@pytest.mark.parametrize("route", ["create", "refresh", "list-threads", "delete-thread"])
def test_refused_connection_is_upstream_unreachable_within_the_bound(make_app, chatkit_config, chatkit_standin, route):
    app = make_app(
        chatkit_config,
        CHATKIT_API_BASE=f"http://127.0.0.1:{free_port()}",
        CHATKIT_CONNECT_TIMEOUT=str(CONNECT),
        CHATKIT_READ_TIMEOUT=str(READ),
        CHATKIT_RETRY_BUDGET_SECONDS=str(BUDGET),
    )
    call = _routes(app.test_client(), chatkit_standin)[route]
    started = time.monotonic()
    response = call()
    _assert_mapped(response, 502, "upstream_unreachable", time.monotonic() - started)


def test_the_next_call_succeeds_once_the_fault_is_gone(fault_app, chatkit_standin):
    client = fault_app.test_client()
    chatkit_standin.inject("reset", times=5)
    assert client.post("/api/chatkit/session").status_code == 502
    chatkit_standin.state.faults.clear()
    assert client.post("/api/chatkit/session").status_code == 200
