"""Admin authentication under attack: guessing is limited per address (finding 8); logout revokes the
cookie in every worker, and the cookie is Secure in production behind any proxy (finding 15).
"""

from __future__ import annotations

import pytest

ADMIN_TOKEN = "admin-token-for-admin-auth-tests-0123456789"
ATTACKER, OPERATOR = {"REMOTE_ADDR": "198.51.100.7"}, {"REMOTE_ADDR": "192.0.2.10"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_app(make_app):
    return make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)


def test_guessing_the_admin_token_is_stopped_after_ten_failures_per_address(admin_app):
    client = admin_app.test_client()
    statuses = [
        client.get("/api/admin/errors", headers=bearer(f"guess-{i}"), environ_base=ATTACKER).status_code
        for i in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
    # Over the limit even the right token is refused from that address: the answer is no oracle.
    refused = client.get("/api/admin/errors", headers=bearer(ADMIN_TOKEN), environ_base=ATTACKER)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.get("/api/admin/errors", headers=bearer(ADMIN_TOKEN), environ_base=OPERATOR).status_code == 200


def test_failed_form_sign_ins_and_bearer_guesses_share_one_budget(admin_app):
    client = admin_app.test_client()
    for i in range(5):
        assert client.get("/api/admin/errors", headers=bearer(f"g{i}"), environ_base=ATTACKER).status_code == 401
    for i in range(5):
        assert client.post("/admin/login", data={"token": f"g{i}"}, environ_base=ATTACKER).status_code == 401
    throttled = client.post("/admin/login", data={"token": ADMIN_TOKEN}, environ_base=ATTACKER)
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["code"] == "rate_limited"
    assert "Set-Cookie" not in throttled.headers


def test_requests_without_a_token_do_not_spend_the_operators_budget(admin_app):
    # A page elsewhere can make the operator's browser load /api/admin/... (no header, no Strict cookie).
    client = admin_app.test_client()
    for _ in range(20):
        assert client.get("/api/admin/errors", environ_base=OPERATOR).status_code == 401
    assert client.get("/api/admin/errors", headers=bearer(ADMIN_TOKEN), environ_base=OPERATOR).status_code == 200


def test_the_failure_limit_is_configurable(make_app):
    client = make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN, CHATKIT_ADMIN_AUTH_FAILURE_LIMIT="2/minute").test_client()
    statuses = [
        client.get("/api/admin/errors", headers=bearer("g"), environ_base=ATTACKER).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_the_failure_limit_holds_across_workers_sharing_redis(make_app, redis_url):
    shared = {"CHATKIT_ADMIN_TOKEN": ADMIN_TOKEN, "RATELIMIT_STORAGE_URI": redis_url}
    prefix = {"RATELIMIT_KEY_PREFIX": f"admin-auth-{id(shared)}"}
    workers = [make_app(shared, **prefix).test_client() for _ in range(2)]
    statuses = [
        workers[i % 2].get("/api/admin/errors", headers=bearer(f"guess-{i}"), environ_base=ATTACKER).status_code
        for i in range(11)
    ]
    assert statuses == [401] * 10 + [429]


def _signed_in(client, base_url: str = "http://localhost") -> str:
    response = client.post("/admin/login", data={"token": ADMIN_TOKEN}, base_url=base_url)
    assert response.status_code == 303
    return client.get_cookie("chatkit_admin").value


def _logout(client, base_url: str = "http://localhost") -> None:
    page = client.get("/admin", base_url=base_url).get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/admin/logout", data={"csrf_token": token}, base_url=base_url).status_code == 303


def test_a_cookie_copied_before_logout_opens_nothing_after_it_in_any_worker(make_app):
    # Two apps on one database: two gunicorn workers (or machines).
    first, second = make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN), make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    browser = first.test_client()
    stolen = _signed_in(browser)
    thief = second.test_client()
    thief.set_cookie("chatkit_admin", stolen)
    assert thief.get("/api/admin/errors").status_code == 200
    _logout(browser)
    for app in (first, second):
        replay = app.test_client()
        replay.set_cookie("chatkit_admin", stolen)
        assert replay.get("/api/admin/errors").status_code == 401
        assert b'name="token"' in replay.get("/admin").data  # the sign-in form, not the dashboard


def test_logging_out_one_browser_leaves_another_signed_in(admin_app):
    one, other = admin_app.test_client(), admin_app.test_client()
    _signed_in(one)
    _signed_in(other)
    _logout(one)
    assert one.get("/api/admin/errors").status_code == 401
    assert other.get("/api/admin/errors").status_code == 200


def test_the_admin_cookie_is_secure_in_production_even_without_a_trusted_proxy(make_app):
    # TLS ends at a proxy, TRUSTED_PROXY_HOPS=0: the request the app sees is plain http.
    app = make_app(CHATKIT_ENV="production", CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    response = app.test_client().post("/admin/login", data={"token": ADMIN_TOKEN})
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]
    development = make_app(CHATKIT_ENV="development", CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)
    plain = development.test_client().post("/admin/login", data={"token": ADMIN_TOKEN})
    assert "Secure" not in plain.headers["Set-Cookie"]
