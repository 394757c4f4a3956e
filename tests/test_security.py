"""Security checks not covered elsewhere.

Covered in their own modules (not repeated here): a tampered identity cookie never yields the claimed
user (test_identity.py), CORS without a listed origin (test_http_security.py), nosniff/Referrer-Policy on
every fuzzed answer (test_fuzz.py), no secret in logs, error bodies or rows across a full flow under
gunicorn (test_processes.py), forwarded headers through nginx (test_nginx.py).
"""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

ADMIN_TOKEN = "admin-token-for-security-tests-0123456789"


@pytest.fixture
def admin_client(make_app, tmp_path):
    app = make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN, CHATKIT_ANALYTICS_SPOOL_PATH=str(tmp_path / "spool.jsonl"))
    return app.test_client()


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        f"bearer {ADMIN_TOKEN}",
        f"Bearer  {ADMIN_TOKEN}",
        f"Bearer {ADMIN_TOKEN} ",
        f"Bearer {ADMIN_TOKEN[:-1]}",
        f"Bearer {ADMIN_TOKEN}x",
        f"Bearer {ADMIN_TOKEN.upper()}",
        f"Basic {ADMIN_TOKEN}",
        f"Token {ADMIN_TOKEN}",
    ],
)
@pytest.mark.parametrize("path", ["/api/admin/analytics/summary", "/api/admin/errors"])
def test_admin_api_refuses_every_near_miss_token(admin_client, path, authorization):
    response = admin_client.get(path, headers={"Authorization": authorization} if authorization else {})
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert ADMIN_TOKEN not in response.get_data(as_text=True)


def test_admin_cookie_signed_with_another_key_opens_nothing(admin_client):
    forged = URLSafeTimedSerializer("not-the-secret-key", salt="chatkit-admin").dumps({"token": "anything"})
    admin_client.set_cookie("chatkit_admin", forged)
    assert admin_client.get("/api/admin/errors").status_code == 401
    page = admin_client.get("/admin")
    assert page.status_code == 200
    assert b'name="token"' in page.data  # the sign-in form, not the dashboard


def test_html_pages_carry_a_restrictive_csp_and_refuse_framing(admin_client):
    page = admin_client.get("/admin")
    assert page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"


def test_json_answers_carry_no_html_csp(admin_client):
    # The CSP is for documents; JSON answers need only nosniff.
    response = admin_client.get("/health")
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_is_configurable_and_off_with_zero(make_app):
    https = {"X-Forwarded-Proto": "https"}
    short = make_app(TRUSTED_PROXY_HOPS="1", CHATKIT_HSTS_SECONDS="300").test_client().get("/health", headers=https)
    assert short.headers["Strict-Transport-Security"] == "max-age=300; includeSubDomains"
    off = make_app(TRUSTED_PROXY_HOPS="1", CHATKIT_HSTS_SECONDS="0").test_client().get("/health", headers=https)
    assert "Strict-Transport-Security" not in off.headers


def test_without_a_trusted_proxy_a_client_cannot_claim_https(make_app):
    response = make_app().test_client().get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("path", ["/api/analytics/message", "/api/errors", "/api/chatkit/session", "/api/admin/errors"])
def test_cors_preflight_from_an_unlisted_origin_gets_no_allow_origin(make_app, path):
    app = make_app(CORS_ORIGINS="https://app.example.com", CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    response = app.test_client().options(
        path,
        headers={
            "Origin": "https://evil.example.net",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_request_ids_from_clients_cannot_inject_into_logs(make_app):
    claimed = 'x", "level": "CRITICAL", "user": "admin'
    response = make_app().test_client().get("/health", headers={"X-Request-ID": claimed})
    assert response.headers["X-Request-ID"] != claimed
    assert response.headers["X-Request-ID"].isalnum()
