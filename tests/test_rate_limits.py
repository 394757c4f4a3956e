"""Rate limiting: memory and Redis storage, and a Redis that goes away mid-run."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest
from flask import Blueprint, Flask

from chatkit_backend.rate_limits import limiter
from tests.tcp_proxy import TcpProxy


def with_limited_route(app: Flask, limit: str = "3/minute") -> Flask:
    """Add GET /probe/limited with `limit` to `app`."""
    bp = Blueprint("limited_probe", __name__)

    def limited():
        return {"ok": True}

    # The limiter is module-level and remembers limits by function name: one name per app.
    limited.__qualname__ = f"limited_{uuid.uuid4().hex}"
    bp.get("/probe/limited")(limiter.limit(limit)(limited))
    app.register_blueprint(bp)
    return app


def statuses(client, n: int, **kwargs) -> list[int]:
    return [client.get("/probe/limited", **kwargs).status_code for _ in range(n)]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def storage_uri(request) -> str:
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_url")


def test_limit_allows_exactly_n_then_429(make_app, storage_uri):
    app = with_limited_route(make_app(RATELIMIT_STORAGE_URI=storage_uri))
    assert statuses(app.test_client(), 5) == [200, 200, 200, 429, 429]


def test_limits_are_kept_per_client_address(make_app, storage_uri):
    app = with_limited_route(make_app(RATELIMIT_STORAGE_URI=storage_uri), "1/minute")
    client = app.test_client()
    assert statuses(client, 2, environ_base={"REMOTE_ADDR": "10.0.0.1"}) == [200, 429]
    assert statuses(client, 1, environ_base={"REMOTE_ADDR": "10.0.0.2"}) == [200]


@pytest.mark.redis
def test_two_apps_sharing_redis_share_the_count(make_app, redis_url):
    prefix = f"shared-{uuid.uuid4().hex[:8]}"
    first = with_limited_route(make_app(RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=prefix))
    assert statuses(first.test_client(), 2) == [200, 200]
    # A second app (another worker) on the same storage and prefix counts in the same window.
    second = make_app(RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=prefix)
    second.register_blueprint(first.blueprints["limited_probe"])
    assert statuses(second.test_client(), 2) == [200, 429]


@pytest.mark.redis
def test_redis_going_away_keeps_the_service_answering(make_app, redis_url, capsys):
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    try:
        uri = f"redis://{proxy.url_host}{target.path or '/0'}"
        # Configured for ChatKit, so that readiness depends on the rate-limit storage alone.
        configured = {"OPENAI_API_KEY": "sk-test", "CHATKIT_WORKFLOW_ID": "wf_test"}
        app = with_limited_route(make_app(configured, RATELIMIT_STORAGE_URI=uri), "3/minute")
        client = app.test_client()
        assert statuses(client, 2) == [200, 200]
        assert client.get("/ready").get_json()["checks"]["rate_limit_storage"]["ok"] is True

        proxy.cut()
        capsys.readouterr()
        # Limits now hold in memory: the service answers, and still limits.
        after = statuses(client, 6)
        assert after[:3] == [200, 200, 200]
        assert after[3:] == [429, 429, 429]
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        # Without Redis the limits still hold per process: degraded, still ready (200), not unready.
        assert ready.status_code == 200
        assert ready.get_json()["checks"]["rate_limit_storage"]["ok"] is False
        assert ready.get_json()["status"] == "degraded"

        warnings = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{") and "falling back to in-memory" in line
        ]
        assert len(warnings) == 1, "one clear warning, not one per request"
    finally:
        proxy.cut()


def test_thread_routes_are_limited_per_address_whatever_the_cookie(make_app, chatkit_config, chatkit_standin):
    # Without a cookie every request is a new user: only the address budget bounds the upstream calls.
    app = make_app(chatkit_config, CHATKIT_THREADS_RATE_LIMIT_PER_ADDRESS="3/minute")
    address = {"REMOTE_ADDR": "10.7.7.7"}
    answers = [
        app.test_client().get("/api/chatkit/threads", environ_base=address),
        app.test_client().delete("/api/chatkit/threads/cthr_x", environ_base=address),
        app.test_client().get("/api/chatkit/threads", environ_base=address),
        app.test_client().get("/api/chatkit/threads", environ_base=address),
        app.test_client().delete("/api/chatkit/threads/cthr_y", environ_base=address),
    ]
    assert [answer.status_code for answer in answers] == [200, 404, 200, 429, 429]
    assert answers[-1].get_json()["error"]["code"] == "rate_limited"
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert len(chatkit_standin.requests) == 3
    assert app.test_client().get("/api/chatkit/threads", environ_base={"REMOTE_ADDR": "10.7.7.8"}).status_code == 200


def _batch(count: int) -> list[dict]:
    return [{"type": "message", "id": str(uuid.uuid4())} for _ in range(count)]


def test_analytics_events_are_counted_one_by_one_per_address(make_app):
    app = make_app(CHATKIT_ANALYTICS_EVENT_RATE_LIMIT="10/minute")
    client = app.test_client()
    address = {"REMOTE_ADDR": "10.8.8.8"}
    assert client.post("/api/analytics/events", json=_batch(8), environ_base=address).status_code == 200
    assert client.post("/api/analytics/message", json={}, environ_base=address).status_code == 200
    over = client.post("/api/analytics/events", json=_batch(3), environ_base=address)
    assert over.status_code == 429
    assert over.get_json()["error"]["code"] == "rate_limited"
    assert int(over.headers["Retry-After"]) > 0
    assert client.post("/api/errors", json={"message": "x"}, environ_base=address).status_code == 200  # the 10th
    assert client.post("/api/errors", json={"message": "x"}, environ_base=address).status_code == 429
    other = {"REMOTE_ADDR": "10.8.8.9"}
    assert client.post("/api/analytics/events", json=_batch(10), environ_base=other).status_code == 200


def test_analytics_events_are_counted_per_user_across_addresses(make_app):
    import time

    import jwt

    secret = "jwt-test-secret-at-least-32-bytes-long!"
    app = make_app(
        CHATKIT_IDENTITY_MODE="jwt", CHATKIT_JWT_SECRET=secret, CHATKIT_ANALYTICS_EVENT_RATE_LIMIT="10/minute"
    )
    token = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 60}, secret, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    first = client.post(
        "/api/analytics/events", json=_batch(8), headers=headers, environ_base={"REMOTE_ADDR": "10.1.1.1"}
    )
    assert first.status_code == 200
    second = client.post(
        "/api/analytics/events", json=_batch(8), headers=headers, environ_base={"REMOTE_ADDR": "10.1.1.2"}
    )
    assert second.status_code == 429
    # Another address without the token is not that user.
    assert (
        client.post("/api/analytics/events", json=_batch(8), environ_base={"REMOTE_ADDR": "10.1.1.3"}).status_code
        == 200
    )
