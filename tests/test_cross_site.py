"""Cross-site requests (findings 7 and 13): CORS answers exact origins only and never lends the admin API
credentials; state-changing session routes refuse browsers' cross-site requests unless from CORS_ORIGINS.
"""

from __future__ import annotations

import pytest

ADMIN_TOKEN = "admin-token-for-cross-site-tests-0123456"
LISTED = "https://app.example.com"
# What a form on another site posts: no body, a content type a form may send, the browser's own headers.
CROSS_SITE_FORM = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
STATE_CHANGING = [
    ("POST", "/api/chatkit/session"),
    ("POST", "/api/chatkit/session/"),
    ("POST", "/api/chatkit/refresh?token=ek_x"),
    ("POST", "/api/chatkit/session/cancel"),
    ("DELETE", "/api/chatkit/threads/cthr_1"),
]


@pytest.fixture
def session_app(make_app, chatkit_config):
    return make_app(chatkit_config, CORS_ORIGINS=LISTED, CHATKIT_SESSION_RATE_LIMIT="2/minute")


def _send(app, method: str, path: str, headers: dict[str, str]):
    return app.test_client().open(path, method=method, headers=headers, data=b"")


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
@pytest.mark.parametrize(
    "headers",
    [
        CROSS_SITE_FORM,
        {"Origin": "https://sibling.example.com", "Sec-Fetch-Site": "same-site"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},  # a browser without Sec-Fetch-Site
    ],
)
def test_cross_site_state_changing_requests_are_refused_before_anything_happens(
    session_app, chatkit_standin, method, path, headers
):
    response = _send(session_app, method, path, headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "Set-Cookie" not in response.headers  # no identity made for the other site
    assert chatkit_standin.requests == []


def test_a_refused_cross_site_request_spends_no_rate_limit(session_app):
    for _ in range(3):
        assert _send(session_app, "POST", "/api/chatkit/session", CROSS_SITE_FORM).status_code == 403
    same_origin = session_app.test_client()
    statuses = [same_origin.post("/api/chatkit/session", headers={"Sec-Fetch-Site": "same-origin"}) for _ in range(2)]
    assert [response.status_code for response in statuses] == [200, 200]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": LISTED, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://APP.example.com", "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost"},
        {},  # not a browser: curl, a server
    ],
)
def test_same_origin_listed_origins_and_non_browsers_may_create_a_session(session_app, headers):
    response = _send(session_app, "POST", "/api/chatkit/session", headers)
    assert response.status_code == 200, response.get_json()


def test_listing_threads_is_not_refused_cross_site(session_app):
    # A GET changes nothing; CORS alone decides whether the page may read the answer.
    response = session_app.test_client().get("/api/chatkit/threads", headers=CROSS_SITE_FORM)
    assert response.status_code == 200


def test_admin_login_from_a_listed_origin_is_still_refused(make_app):
    app = make_app(CORS_ORIGINS=LISTED, CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    response = app.test_client().post(
        "/admin/login", data={"token": ADMIN_TOKEN}, headers={"Origin": LISTED, "Sec-Fetch-Site": "same-site"}
    )
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


# CORS (finding 7)


@pytest.mark.parametrize("origin", ["https://app.example.com.evil.com", "https://evil.app.example.com", "null"])
def test_cors_does_not_answer_origins_that_only_look_like_a_listed_one(make_app, origin):
    client = make_app(CORS_ORIGINS=LISTED).test_client()
    response = client.options(
        "/api/chatkit/session", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("cors_origins", ["*", "null", "https://*.example.com"])
def test_a_wildcard_or_null_cors_origin_stops_start_up(make_app, cors_origins):
    from chatkit_backend.config import ConfigError

    with pytest.raises(ConfigError, match="is not an origin"):
        make_app(CORS_ORIGINS=cors_origins)


def test_the_admin_api_never_answers_cors_with_credentials(make_app):
    client = make_app(CORS_ORIGINS=LISTED, CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN).test_client()
    preflight = client.options("/api/admin/errors", headers={"Origin": LISTED, "Access-Control-Request-Method": "GET"})
    read = client.get("/api/admin/errors", headers={"Origin": LISTED, "Authorization": f"Bearer {ADMIN_TOKEN}"})
    for response in (preflight, read):
        assert "Access-Control-Allow-Credentials" not in response.headers
    session = client.options(
        "/api/chatkit/session", headers={"Origin": LISTED, "Access-Control-Request-Method": "POST"}
    )
    assert session.headers["Access-Control-Allow-Credentials"] == "true"
