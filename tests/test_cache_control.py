"""`Cache-Control: no-store` on every answer carrying a client secret and on the admin API (finding 9)."""

from __future__ import annotations

import pytest

ADMIN_TOKEN = "admin-token-for-cache-control-tests-0123"


def test_session_and_refresh_answers_carrying_a_client_secret_are_no_store(make_app, chatkit_config):
    browser = make_app(chatkit_config).test_client()
    created = browser.post("/api/chatkit/session")
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    refreshed = browser.post("/api/chatkit/refresh", json={"client_secret": created.get_json()["client_secret"]})
    assert "client_secret" in refreshed.get_json()
    assert refreshed.headers["Cache-Control"] == "no-store"
    assert browser.get("/api/chatkit/threads").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/api/admin/analytics/summary", "/api/admin/errors"])
@pytest.mark.parametrize("token", [ADMIN_TOKEN, "wrong"])
def test_admin_json_answers_are_no_store(make_app, path, token):
    client = make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN).test_client()
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == (200 if token == ADMIN_TOKEN else 401)
    assert response.headers["Cache-Control"] == "no-store"
