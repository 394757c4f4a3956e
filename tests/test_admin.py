"""Admin API and dashboard access: token-gated, absent without a token, numbers from the seeded data."""

from __future__ import annotations

import pytest

from tests.admin_support import ADMIN_TOKEN, RANGE, seed

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def admin_app(analytics_app):
    return analytics_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)


@pytest.mark.parametrize("path", ["/api/admin/analytics/summary", "/api/admin/errors", "/admin"])
def test_admin_routes_do_not_exist_without_a_token(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}])
def test_admin_api_refuses_a_missing_or_wrong_token_with_401(admin_app, headers):
    response = admin_app.test_client().get("/api/admin/analytics/summary", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_summary_counts_each_kind_per_bucket_with_sessions_users_and_top_errors(admin_app, monkeypatch):
    monkeypatch.setattr("chatkit_backend.analytics.ingest.peek_user", lambda: "user-a")
    seed(admin_app)
    response = admin_app.test_client().get(f"/api/admin/analytics/summary?{RANGE}", headers=BEARER)
    assert response.status_code == 200
    body = response.get_json()
    assert body["buckets"][:3] == [
        "2026-11-17T00:00:00+00:00",
        "2026-11-18T00:00:00+00:00",
        "2026-11-19T00:00:00+00:00",
    ]
    assert body["counts"]["message"] == [0, 3, 5, 0]
    assert body["counts"]["thread_change"] == [0, 1, 2, 0]
    assert body["counts"]["sessions"] == [0, 2, 1, 0]
    assert body["sessions_issued"] == 3
    assert body["distinct_users"] == 1
    assert body["error_reports"] == 4
    assert [(g["message"], g["count"]) for g in body["top_errors"]] == [
        ("Upload failed after 0 retries", 3),
        ("Network down", 1),
    ]


def test_summary_by_hour_puts_events_in_their_hour(admin_app):
    seed(admin_app)
    query = "since=2026-11-18T09:00:00Z&until=2026-11-18T11:00:00Z&bucket=hour"
    body = admin_app.test_client().get(f"/api/admin/analytics/summary?{query}", headers=BEARER).get_json()
    assert body["counts"]["message"] == [3, 0]


@pytest.mark.parametrize(
    ("query", "field"),
    [("bucket=week", "bucket"), ("since=yesterday", "since"), ("since=2026-11-20&until=2026-11-19", "since")],
)
def test_summary_with_a_bad_parameter_is_a_validation_error(admin_app, query, field):
    response = admin_app.test_client().get(f"/api/admin/analytics/summary?{query}", headers=BEARER)
    assert response.status_code == 400
    assert [d["field"] for d in response.get_json()["error"]["details"]] == [field]


def test_errors_are_paged_most_frequent_first(admin_app):
    seed(admin_app)
    client = admin_app.test_client()
    first = client.get("/api/admin/errors?per_page=1", headers=BEARER).get_json()
    second = client.get("/api/admin/errors?per_page=1&page=2", headers=BEARER).get_json()
    assert (first["total"], first["page"], first["per_page"]) == (2, 1, 1)
    assert [g["count"] for g in first["items"] + second["items"]] == [3, 1]
    assert client.get("/api/admin/errors?per_page=0", headers=BEARER).status_code == 400


def test_dashboard_shows_the_login_form_until_signed_in(admin_app):
    response = admin_app.test_client().get("/admin")
    assert response.status_code == 200
    assert b'name="token"' in response.data
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_login_sets_an_httponly_samesite_strict_cookie_that_opens_the_dashboard(admin_app):
    client = admin_app.test_client()
    response = client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert ADMIN_TOKEN not in cookie
    page = client.get("/admin")
    assert b'id="chart-message"' in page.data
    assert client.get("/api/admin/errors").status_code == 200


def test_login_with_a_wrong_token_is_refused(admin_app):
    client = admin_app.test_client()
    response = client.post("/admin/login", data={"token": "nope"})
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_cross_site_login_post_is_refused(admin_app):
    response = admin_app.test_client().post(
        "/admin/login", data={"token": ADMIN_TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 401


def test_logout_needs_the_csrf_token(admin_app):
    client = admin_app.test_client()
    client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert client.post("/admin/logout", data={}).status_code == 403
    page = client.get("/admin").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert b'name="token"' in client.get("/admin").data


def test_cookie_from_a_previous_token_is_not_accepted(analytics_app):
    old = analytics_app(CHATKIT_ADMIN_TOKEN="old-token-1234567890")
    client = old.test_client()
    client.post("/admin/login", data={"token": "old-token-1234567890"})
    cookie = client.get_cookie("chatkit_admin").value
    new = analytics_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    other = new.test_client()
    other.set_cookie("chatkit_admin", cookie)
    assert other.get("/api/admin/errors").status_code == 401
