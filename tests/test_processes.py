"""The service as it runs in production: real gunicorn (gevent) processes on loopback.

- a hanging upstream stalls session creation, but /health and analytics keep answering promptly;
- with several workers and Redis, N+k requests inside one window → exactly N allowed;
- a full flow (sessions, analytics, errors, admin) leaves no secret in any log line, error body or row.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from tests.chatkit_standin import ChatKitStandin
from tests.servers import gunicorn, send

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
READ_TIMEOUT = 2.0


def _post_json(url: str, path: str, body, headers: dict[str, str] | None = None):
    return send(url, "POST", path, body=json.dumps(body).encode(), headers={**JSON, **(headers or {})})


# --- a stalled upstream does not stall the rest of the service --------------------------------------------


@pytest.fixture(scope="module")
def stalled_stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stalled")
    with ChatKitStandin() as standin:
        env = {
            "SECRET_KEY": "stall-test-secret-key-of-32-characters",
            "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
            "CHATKIT_ANALYTICS_SPOOL_PATH": str(workdir / "spool.jsonl"),
            "CHATKIT_API_BASE": standin.url,
            "OPENAI_API_KEY": standin.api_key,
            "CHATKIT_WORKFLOW_ID": standin.workflow_id,
            "CHATKIT_CONNECT_TIMEOUT": "1",
            "CHATKIT_READ_TIMEOUT": str(READ_TIMEOUT),
            "CHATKIT_RETRY_BUDGET_SECONDS": "0",
            # One worker: the stalled session calls wait in greenlets while it keeps answering.
            "WEB_CONCURRENCY": "1",
        }
        with gunicorn(env, workdir / "gunicorn.log") as url:
            yield url, standin


def test_health_and_analytics_answer_promptly_while_session_creation_hangs(stalled_stack):
    url, standin = stalled_stack
    stalled = 3
    standin.inject("hang", seconds=30, times=stalled)
    already = len(standin.requests)
    with ThreadPoolExecutor(stalled) as pool:
        started = time.monotonic()
        creations = [
            pool.submit(send, url, "POST", "/api/chatkit/session", source=f"127.0.0.{50 + i}", timeout=20)
            for i in range(stalled)
        ]
        standin.wait_for_requests(already + stalled)  # the three calls reached the hanging upstream
        for i in range(5):
            for method, path, body in (
                ("GET", "/health", None),
                ("POST", "/api/analytics/message", json.dumps({"id": f"during-stall-{i}"}).encode()),
                ("POST", "/api/errors", json.dumps({"message": f"while stalled {i}"}).encode()),
            ):
                asked = time.monotonic()
                answer = send(url, method, path, body=body, headers=JSON if body else None, timeout=5)
                assert answer.status == 200, (path, answer.body)
                assert time.monotonic() - asked < 0.5, f"{path} took {time.monotonic() - asked:.2f} s"
        assert not any(c.done() for c in creations), "the session calls should still be stalled"
        answers = [c.result() for c in creations]
    elapsed = time.monotonic() - started
    assert [a.status for a in answers] == [504] * stalled
    assert {a.json()["error"]["code"] for a in answers} == {"upstream_timeout"}
    assert elapsed < READ_TIMEOUT + 1 + 2  # read + connect timeout, plus slack for a slow CI machine


# --- exact limits across workers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory):
    from tests.conftest import REDIS_URL, port_open, service_missing

    if not port_open(REDIS_URL, 6379):
        service_missing("Redis", REDIS_URL)
    workdir = tmp_path_factory.mktemp("redis-workers")
    with ChatKitStandin(record=False) as standin:
        env = {
            "SECRET_KEY": "workers-test-secret-key-of-32-characters",
            "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
            "CHATKIT_API_BASE": standin.url,
            "OPENAI_API_KEY": standin.api_key,
            "CHATKIT_WORKFLOW_ID": standin.workflow_id,
            "RATELIMIT_STORAGE_URI": REDIS_URL,
            "RATELIMIT_KEY_PREFIX": f"workers-{uuid.uuid4().hex[:8]}",
            "CHATKIT_SESSION_RATE_LIMIT": "1000/minute",
            "CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS": "5/minute",
            "WEB_CONCURRENCY": "3",
        }
        log = workdir / "gunicorn.log"
        with gunicorn(env, log) as url:
            yield url, log


@pytest.mark.redis
def test_several_workers_sharing_redis_allow_exactly_n_in_one_window(redis_stack):
    url, log = redis_stack
    allowed, extra = 5, 7
    with ThreadPoolExecutor(allowed + extra) as pool:
        answers = list(pool.map(lambda _: send(url, "POST", "/api/chatkit/session"), range(allowed + extra)))
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * allowed + [429] * extra
    for answer in answers:
        if answer.status == 429:
            assert answer.json()["error"]["code"] == "rate_limited"
            assert int(answer.headers["Retry-After"]) > 0
    # Three workers served them (each boots and logs once).
    assert log.read_text().count("Booting worker") == 3
    # Another address still has its whole budget.
    assert send(url, "POST", "/api/chatkit/session", source="127.0.0.77").status == 200


# --- no secret leaks ---------------------------------------------------------------------------------------


def _cookie(answer, name: str) -> str:
    for header in answer.headers.get_all("Set-Cookie") or []:
        if header.startswith(name + "="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {answer.headers}")


def _database_text(path) -> str:
    with sqlite3.connect(path) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(connection.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)  # noqa: S608


def test_a_full_flow_leaves_no_secret_in_logs_error_bodies_or_rows(tmp_path):
    admin_token = "admin-token-" + uuid.uuid4().hex
    secret_key = "secret-key-" + uuid.uuid4().hex
    log = tmp_path / "gunicorn.log"
    database = tmp_path / "app.sqlite3"
    with ChatKitStandin() as standin:
        env = {
            "SECRET_KEY": secret_key,
            "DATABASE_URL": f"sqlite:///{database}",
            "CHATKIT_ANALYTICS_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
            "CHATKIT_API_BASE": standin.url,
            "OPENAI_API_KEY": standin.api_key,
            "CHATKIT_WORKFLOW_ID": standin.workflow_id,
            "CHATKIT_ADMIN_TOKEN": admin_token,
            "LOG_LEVEL": "DEBUG",  # the most a deployment would ever log
            "WEB_CONCURRENCY": "1",
        }
        errors: list[bytes] = []
        secrets: dict[str, str] = {"api key": standin.api_key, "admin token": admin_token, "SECRET_KEY": secret_key}

        def call(method: str, path: str, body=None, headers=None):
            data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
            answer = send(url, method, path, body=data, headers={**(JSON if data else {}), **(headers or {})})
            if answer.status >= 400:
                errors.append(answer.body)
            return answer

        with gunicorn(env, log) as url:
            created = call("POST", "/api/chatkit/session")
            uid = _cookie(created, "__Host-chatkit_uid")
            first = created.json()["client_secret"]
            me = {"Cookie": f"__Host-chatkit_uid={uid}"}
            second = call("POST", "/api/chatkit/refresh", {"client_secret": first}, me).json()["client_secret"]
            third = call("POST", "/api/chatkit/refresh?" + urlencode({"token": second}), None, me)
            third_secret = third.json()["client_secret"]
            assert call("GET", "/api/chatkit/threads", None, me).status == 200
            assert call("POST", "/api/chatkit/session/cancel", None, me).status == 200
            secrets.update({"client secret 1": first, "client secret 2": second, "client secret 3": third_secret})
            secrets["identity cookie"] = uid

            # The page forwards events and errors that carry secrets; the service must scrub them.
            assert call("POST", "/api/analytics/message", {"id": "m1", "threadId": "cthr_1", "data": {"t": first}}, me)
            call("POST", "/api/analytics/thread-change", {"id": "t1", "threadId": "cthr_2"}, me)
            call("POST", "/api/analytics/events", [{"type": "log", "name": "x", "data": {"secret": second}}], me)
            call(
                "POST",
                "/api/errors",
                {
                    "message": f"fetch failed: Authorization: Bearer {admin_token}",
                    "stack": f"at load (https://example.test/?token={third_secret}:1:2)",
                    "url": f"https://example.test/page?client_secret={first}",
                    "context": {"authorization": f"Bearer {admin_token}", "cookie": f"__Host-chatkit_uid={uid}"},
                },
                me,
            )

            # Admin: the API with the token, then the dashboard through its sign-in cookie.
            bearer = {"Authorization": f"Bearer {admin_token}"}
            assert call("GET", "/api/admin/analytics/summary", None, bearer).status == 200
            assert call("GET", "/api/admin/errors", None, bearer).status == 200
            assert call("GET", "/api/admin/errors", None, {"Authorization": f"Bearer {admin_token}x"}).status == 401
            assert call("GET", "/api/admin/errors").status == 401
            login = send(
                url,
                "POST",
                "/admin/login",
                body=urlencode({"token": admin_token}).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert login.status == 303
            admin_cookie = _cookie(login, "chatkit_admin")
            secrets["admin cookie"] = admin_cookie
            assert call("GET", "/admin", None, {"Cookie": f"chatkit_admin={admin_cookie}"}).status == 200

            # Errors that carry secrets in what was sent: none may be echoed back.
            call("POST", "/api/chatkit/refresh", {"client_secret": first + "\x00" * 5000}, me)
            call("POST", "/api/analytics/message", b'{"id": "' + first.encode() + b'", broken', me)
            call("POST", "/api/chatkit/session", {"state_variables": {"plan": first}}, me)
            standin.inject("status", status=401, message=f"Incorrect API key provided: {standin.api_key}")
            assert call("POST", "/api/chatkit/session", None, me).status == 502

        logs = log.read_text()
        rows = _database_text(database)
        assert "request" in logs  # the access log was captured
        # An analytics answer comes after its rows are committed: they are all there to be searched.
        for stored in ("cthr_1", "cthr_2", "fetch failed"):
            assert stored in rows
        for name, value in secrets.items():
            assert value not in logs, f"{name} in the gunicorn log"
            assert value not in rows, f"{name} in a database row"
            for body in errors:
                assert value.encode() not in body, f"{name} in an error body: {body[:200]!r}"
        assert "Authorization" not in logs
        # Any Authorization value that reached a row is the scrubber's marker, never a credential.
        assert re.findall(r"Bearer\s+(?!\[redacted\])\S+", rows) == []
