"""nginx for real, in front of gunicorn, with deploy/nginx.conf (rendered with loopback ports).

Two nginx servers front one gunicorn: plain HTTP, and TLS terminated by nginx with a self-signed
certificate (as in production), so `X-Forwarded-Proto: https` comes from nginx's own `$scheme`.
Clients use different loopback source addresses (127.0.0.x) to be different clients.
"""

from __future__ import annotations

import re

import pytest

from tests.chatkit_standin import ChatKitStandin
from tests.servers import ROOT, gunicorn, nginx, send

pytestmark = pytest.mark.slow

PER_ADDRESS = 3
APP_BODY_LIMIT = 65536
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """gunicorn (TRUSTED_PROXY_HOPS=1, one worker, memory limits) behind nginx: (http, https, app) URLs, stand-in."""
    workdir = tmp_path_factory.mktemp("nginx-stack")
    with ChatKitStandin() as standin:
        env = {
            # development: cookies are Secure only when the request is HTTPS (production: always).
            "CHATKIT_ENV": "development",
            "SECRET_KEY": "nginx-test-secret",
            "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
            "TRUSTED_PROXY_HOPS": "1",
            "MAX_CONTENT_LENGTH": str(APP_BODY_LIMIT),
            "CHATKIT_API_BASE": standin.url,
            "OPENAI_API_KEY": standin.api_key,
            "CHATKIT_WORKFLOW_ID": standin.workflow_id,
            "CHATKIT_SESSION_RATE_LIMIT": "1000/minute",
            "CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS": f"{PER_ADDRESS}/minute",
            # One worker: in-memory counters are then exact.
            "WEB_CONCURRENCY": "1",
        }
        with (
            gunicorn(env, workdir / "gunicorn.log") as app_url,
            nginx(app_url, workdir / "nginx") as http_url,
            nginx(app_url, workdir / "nginx-tls", tls=True) as https_url,
        ):
            yield http_url, https_url, app_url, standin


def _create(url: str, source: str, headers: dict[str, str] | None = None):
    return send(url, "POST", "/api/chatkit/session", headers=headers, source=source)


def test_health_answers_through_nginx(stack):
    http_url, https_url, *_ = stack
    for url in (http_url, https_url):
        answer = send(url, "GET", "/health")
        assert (answer.status, answer.json()) == (200, {"status": "healthy"})


def test_rate_limits_key_on_the_real_client_address(stack):
    http_url, *_ = stack
    statuses = [_create(http_url, "127.0.0.11").status for _ in range(PER_ADDRESS + 2)]
    assert statuses == [200] * PER_ADDRESS + [429, 429]
    # Another client (another source address) has its own budget.
    assert _create(http_url, "127.0.0.12").status == 200


def test_a_client_sent_x_forwarded_for_cannot_pick_another_key(stack):
    http_url, *_ = stack
    for _ in range(PER_ADDRESS):
        assert _create(http_url, "127.0.0.21").status == 200
    # Claiming to be a fresh address (or the proxy chain of one) does not escape the limit.
    for spoof in ("127.0.0.22", "10.9.8.7, 127.0.0.22", "127.0.0.22, 127.0.0.23"):
        answer = _create(http_url, "127.0.0.21", {"X-Forwarded-For": spoof, "X-Real-IP": "127.0.0.22"})
        assert answer.status == 429, spoof
        assert answer.json()["error"]["code"] == "rate_limited"
        assert int(answer.headers["Retry-After"]) > 0
    # 127.0.0.22 itself was never charged for those.
    assert _create(http_url, "127.0.0.22").status == 200


def test_tls_at_nginx_gives_secure_cookies_and_hsts(stack):
    http_url, https_url, *_ = stack
    secure = _create(https_url, "127.0.0.31")
    assert secure.status == 200
    cookie = secure.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")

    plain = _create(http_url, "127.0.0.32")
    assert plain.status == 200
    assert "Secure" not in plain.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in plain.headers


def test_a_client_cannot_claim_https_through_nginx(stack):
    http_url, *_ = stack
    answer = _create(http_url, "127.0.0.33", {"X-Forwarded-Proto": "https"})
    assert answer.status == 200
    assert "Secure" not in answer.headers["Set-Cookie"]


def test_nginx_refuses_bodies_over_its_limit_with_the_json_contract(stack):
    http_url, *_ = stack
    answer = send(http_url, "POST", "/api/chatkit/session", body=b"x" * (2 * 1024 * 1024), headers=JSON)
    assert answer.status == 413
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_uploads_pass_nginx_up_to_their_own_limit(stack):
    http_url, *_ = stack
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    # This stack serves hosted sessions, so the app answers 503 not_configured: what matters is who answers.
    passed = send(http_url, "POST", "/api/chatkit/attachments", body=b"x" * (2 * 1024 * 1024), headers=multipart)
    refused = send(http_url, "POST", "/api/chatkit/attachments", body=b"x" * (12 * 1024 * 1024), headers=multipart)
    assert (passed.status, passed.json()["error"]["code"]) == (503, "not_configured")
    assert passed.json()["error"]["request_id"]  # the app's answer
    assert (refused.status, refused.json()["error"]["code"]) == (413, "payload_too_large")


def test_the_app_refuses_bodies_over_its_own_lower_limit(stack):
    http_url, *_ = stack
    answer = send(http_url, "POST", "/api/chatkit/session", body=b"{" * (APP_BODY_LIMIT + 1), headers=JSON)
    assert answer.status == 413
    body = answer.json()
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["request_id"]  # the app's answer, not nginx's


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"X-Huge": "a" * 20_000}, 431, "headers_too_large"),  # over nginx's 16k buffers
        ({"X-Big": "a" * 12_000}, 431, "headers_too_large"),  # passes nginx, over gunicorn's 8190
        ({"Cookie": "c=" + "a" * 40_000}, 431, "headers_too_large"),
    ],
)
def test_huge_headers_are_json_through_nginx(stack, headers, status, code):
    http_url, *_ = stack
    answer = send(http_url, "GET", "/health", headers=headers)
    assert answer.status == status
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"]["code"] == code


def test_huge_headers_are_json_at_gunicorn_directly(stack):
    _, _, app_url, _ = stack
    answer = send(app_url, "GET", "/health", headers={"X-Big": "a" * 12_000})
    assert answer.status == 431
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error"] == {
        "code": "headers_too_large",
        "message": "Request Header Fields Too Large: the server could not accept this request.",
        "request_id": None,
    }


def test_a_huge_request_line_is_json(stack):
    http_url, _, app_url, _ = stack
    for url in (http_url, app_url):
        answer = send(url, "GET", "/health?q=" + "a" * 9000)
        assert answer.status in (414, 431), url
        assert answer.headers["Content-Type"].startswith("application/json"), url
        assert answer.json()["error"]["code"] in ("uri_too_long", "headers_too_large")


def test_path_traversal_in_thread_ids_is_the_error_contract(stack):
    http_url, *_ = stack
    for path in ("/api/chatkit/threads/..%2F..%2Fetc%2Fpasswd", "/api/chatkit/threads/../../etc/passwd"):
        answer = send(http_url, "DELETE", path)
        assert answer.status in (400, 404), path
        assert answer.headers["Content-Type"].startswith("application/json"), path
        assert answer.json()["error"]["code"] in ("validation_error", "not_found"), path


def test_gunicorn_down_is_a_json_503_from_nginx(tmp_path):
    from tests.conftest import free_port

    with nginx(f"http://127.0.0.1:{free_port()}", tmp_path / "nginx-nothing-behind") as url:
        answer = send(url, "GET", "/health")
    assert answer.status == 503
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "unavailable"
    assert answer.headers["Retry-After"] == "5"


def test_a_tampered_identity_cookie_never_reaches_chatkit_as_the_claimed_user(stack):
    http_url, _, _, standin = stack
    first = _create(http_url, "127.0.0.41")
    cookie = next(h for h in first.headers.get_all("Set-Cookie") if h.startswith("chatkit_uid="))
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    claimed_user = standin.requests_to("/v1/chatkit/sessions", "POST")[-1].body["user"]
    # Change one character of the signed id (not the signature's last character: its low bits carry
    # no data, so some changes there decode to the same signature), and try the bare id too.
    position = 6
    tampered = value[:position] + ("A" if value[position] != "A" else "B") + value[position + 1 :]
    for forged in (tampered, claimed_user, value.split(".", 1)[0]):
        answer = _create(http_url, "127.0.0.42", {"Cookie": f"chatkit_uid={forged}"})
        assert answer.status == 200
        sent_user = standin.requests_to("/v1/chatkit/sessions", "POST")[-1].body["user"]
        assert sent_user != claimed_user
    # The genuine cookie is still the same user.
    assert _create(http_url, "127.0.0.43", {"Cookie": f"chatkit_uid={value}"}).status == 200
    assert standin.requests_to("/v1/chatkit/sessions", "POST")[-1].body["user"] == claimed_user


@pytest.fixture(scope="module")
def header_mode_stack(tmp_path_factory):
    """gunicorn in identity mode `header` (TRUSTED_PROXY_HOPS=1) behind the template: (nginx URL, app URL, stand-in)."""
    workdir = tmp_path_factory.mktemp("nginx-header-mode")
    with ChatKitStandin() as standin:
        env = {
            "CHATKIT_ENV": "development",
            "SECRET_KEY": "nginx-header-test-secret",
            "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
            "TRUSTED_PROXY_HOPS": "1",
            "CHATKIT_IDENTITY_MODE": "header",
            "CHATKIT_API_BASE": standin.url,
            "OPENAI_API_KEY": standin.api_key,
            "CHATKIT_WORKFLOW_ID": standin.workflow_id,
            "WEB_CONCURRENCY": "1",
        }
        with gunicorn(env, workdir / "gunicorn.log") as app_url, nginx(app_url, workdir / "nginx") as http_url:
            yield http_url, app_url, standin


def test_no_location_of_the_template_sets_headers_of_its_own():
    # nginx gives a location the server's proxy_set_header lines only when it sets none itself: one
    # that did would pass on a client's X-Forwarded-User (identity mode `header`: anyone is anyone).
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    locations = re.findall(r"^    location [^{]*\{(.*?)^    \}", conf, re.S | re.M)
    assert len(locations) >= 8
    assert [body for body in locations if "proxy_set_header" in body] == []
    server_level = re.sub(r"^    location [^{]*\{.*?^    \}", "", conf, flags=re.S | re.M)
    assert 'proxy_set_header X-Forwarded-User "";' in server_level


@pytest.mark.parametrize("header", ["X-Forwarded-User", "x-forwarded-user", "X-Forwarded_User"])
def test_a_client_sent_user_header_is_dropped_by_the_template(header_mode_stack, header):
    http_url, _, standin = header_mode_stack
    before = len(standin.requests_to("/v1/chatkit/sessions", "POST"))
    for method, path in (("POST", "/api/chatkit/session"), ("GET", "/api/chatkit/threads")):
        answer = send(http_url, method, path, headers={header: "alice"})
        assert answer.status == 401, (method, path, answer.body)
        assert answer.json()["error"]["code"] == "unauthorized"
    assert len(standin.requests_to("/v1/chatkit/sessions", "POST")) == before


def test_the_user_header_is_believed_only_from_the_proxy_hop(header_mode_stack):
    # The same header straight to gunicorn, as if nginx had set it: believed (so the test above
    # shows nginx removing it, not the app ignoring it).
    _, app_url, standin = header_mode_stack
    answer = send(app_url, "POST", "/api/chatkit/session", headers={"X-Forwarded-User": "alice"})
    assert answer.status == 200
    assert standin.requests_to("/v1/chatkit/sessions", "POST")[-1].body["user"] == "alice"
