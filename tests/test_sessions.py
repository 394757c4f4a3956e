"""Session routes end to end: browser → this service → the ChatKit stand-in, and the registry in between."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import Row, create_engine, select

from chatkit_backend.db import normalise_url
from chatkit_backend.sessions import models
from chatkit_backend.sessions.registry import secret_digest

SESSIONS = "/v1/chatkit/sessions"


@pytest.fixture
def session_app(make_app, chatkit_config, database_url):
    return make_app(chatkit_config, DATABASE_URL=database_url, CHATKIT_ALLOWED_STATE_VARIABLES="plan,locale")


@pytest.fixture
def browser(session_app):
    return session_app.test_client()


def _rows(database_url: str) -> list[Row[Any]]:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(models.SESSIONS)))
    finally:
        engine.dispose()


def _user_of(standin, index: int = -1) -> str:
    return standin.requests_to(SESSIONS, "POST")[index].body["user"]


# Create


def test_create_answers_client_secret_and_expires_at(browser, chatkit_standin):
    response = browser.post("/api/chatkit/session")
    body = response.get_json()
    [sent] = chatkit_standin.requests_to(SESSIONS, "POST")
    assert response.status_code == 200
    assert set(body) == {"client_secret", "expires_at"}
    assert body["client_secret"].startswith("ek_")
    assert isinstance(body["expires_at"], int)
    assert sent.body["workflow"]["id"] == chatkit_standin.workflow_id


@pytest.mark.parametrize("kwargs", [{}, {"json": {}}, {"data": "", "content_type": "application/json"}])
def test_create_accepts_an_absent_empty_or_empty_object_body(browser, kwargs):
    assert browser.post("/api/chatkit/session", **kwargs).status_code == 200


def test_create_also_answers_on_the_trailing_slash_path(browser):
    assert browser.post("/api/chatkit/session/").status_code == 200


def test_user_id_in_the_body_is_ignored(browser, chatkit_standin):
    browser.post("/api/chatkit/session", json={"user_id": "victim"})
    assert _user_of(chatkit_standin) != "victim"
    assert _user_of(chatkit_standin).startswith("anon_")


def test_the_same_browser_keeps_its_user_across_sessions(browser, chatkit_standin):
    browser.post("/api/chatkit/session")
    browser.post("/api/chatkit/session")
    assert _user_of(chatkit_standin, 0) == _user_of(chatkit_standin, 1)


def test_allowed_state_variables_are_forwarded(browser, chatkit_standin):
    response = browser.post("/api/chatkit/session", json={"state_variables": {"plan": "pro", "locale": "de"}})
    assert response.status_code == 200
    assert chatkit_standin.requests_to(SESSIONS)[0].body["workflow"]["state_variables"] == {
        "plan": "pro",
        "locale": "de",
    }


def test_state_variable_not_on_the_allow_list_is_400_naming_the_key(browser, chatkit_standin):
    response = browser.post("/api/chatkit/session", json={"state_variables": {"is_admin": True}})
    error = response.get_json()["error"]
    assert response.status_code == 400
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "state_variables.is_admin"
    assert chatkit_standin.requests_to(SESSIONS) == []


def test_state_variable_with_an_object_value_is_400(browser):
    response = browser.post("/api/chatkit/session", json={"state_variables": {"plan": {"x": 1}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == "state_variables.plan"


def test_body_that_is_not_an_object_is_400(browser):
    assert browser.post("/api/chatkit/session", json=[1, 2]).status_code == 400


# Registry: secrets never stored, never logged


def test_registry_stores_the_secret_hash_never_the_secret(browser, database_url):
    secret = browser.post("/api/chatkit/session").get_json()["client_secret"]
    [row] = _rows(database_url)
    assert row.secret_sha256 == secret_digest(secret)
    assert secret not in " ".join(str(value) for value in row)
    assert row.status == "active"


def test_the_client_secret_is_never_logged(make_app, chatkit_config, caplog, capfd):
    app = make_app(chatkit_config, LOG_LEVEL="DEBUG")
    caplog.set_level(logging.DEBUG)
    browser = app.test_client()
    secret = browser.post("/api/chatkit/session").get_json()["client_secret"]
    refreshed = browser.post("/api/chatkit/refresh", json={"client_secret": secret}).get_json()["client_secret"]
    captured = capfd.readouterr()
    for value in (secret, refreshed):
        assert value not in caplog.text
        assert value not in captured.err + captured.out


# Refresh


def test_refresh_creates_a_new_session_and_cancels_the_replaced_one(browser, chatkit_standin, database_url):
    old = browser.post("/api/chatkit/session").get_json()["client_secret"]
    response = browser.post("/api/chatkit/refresh", json={"client_secret": old})
    new = response.get_json()["client_secret"]
    rows = {row.secret_sha256: row for row in _rows(database_url)}
    old_row, new_row = rows[secret_digest(old)], rows[secret_digest(new)]
    assert response.status_code == 200
    assert new != old
    assert _user_of(chatkit_standin, 0) == _user_of(chatkit_standin, 1)
    assert chatkit_standin.requests_to(f"{SESSIONS}/{old_row.id}/cancel", "POST")
    assert chatkit_standin.session(old_row.id)["status"] == "cancelled"
    assert old_row.status == "cancelled"
    assert old_row.replaced_by == new_row.id


@pytest.mark.parametrize("form", ["token_json", "query"])
def test_refresh_accepts_token_in_json_or_query(browser, chatkit_standin, form):
    old = browser.post("/api/chatkit/session").get_json()["client_secret"]
    if form == "token_json":
        response = browser.post("/api/chatkit/refresh", json={"token": old})
    else:
        response = browser.post("/api/chatkit/refresh", query_string={"token": old})
    assert response.status_code == 200
    assert len([r for r in chatkit_standin.requests if r.path.endswith("/cancel")]) == 1


def test_refresh_without_a_secret_is_400(browser, chatkit_standin):
    response = browser.post("/api/chatkit/refresh", json={})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == "client_secret"
    assert chatkit_standin.requests == []


def test_refresh_with_an_unknown_secret_gets_a_new_session_and_cancels_nothing(browser, chatkit_standin):
    response = browser.post("/api/chatkit/refresh", json={"client_secret": "ek_never_issued"})
    assert response.status_code == 200
    assert not [r for r in chatkit_standin.requests if r.path.endswith("/cancel")]


def test_refresh_with_another_users_secret_cancels_nothing(session_app, chatkit_standin, database_url):
    alice, mallory = session_app.test_client(), session_app.test_client()
    alice_secret = alice.post("/api/chatkit/session").get_json()["client_secret"]
    response = mallory.post("/api/chatkit/refresh", json={"client_secret": alice_secret})
    assert response.status_code == 200
    assert _user_of(chatkit_standin, 1) != _user_of(chatkit_standin, 0)
    assert not [r for r in chatkit_standin.requests if r.path.endswith("/cancel")]
    assert {row.status for row in _rows(database_url)} == {"active"}


def test_refresh_still_answers_when_cancelling_the_old_session_fails(browser, chatkit_standin):
    old = browser.post("/api/chatkit/session").get_json()["client_secret"]
    chatkit_standin.inject("status", status=500, times=10, path_prefix=SESSIONS + "/cksess_")
    response = browser.post("/api/chatkit/refresh", json={"client_secret": old})
    assert response.status_code == 200


def test_a_session_the_registry_cannot_record_is_cancelled_upstream(browser, chatkit_standin, monkeypatch):
    # Unrecorded, logout could never find it: the minted session must not stay alive.
    def refuse(self, session, user):
        raise RuntimeError("the registry refused the row")

    monkeypatch.setattr("chatkit_backend.sessions.registry.SessionRegistry.record", refuse)
    response = browser.post("/api/chatkit/session")
    assert response.status_code == 500
    [created] = chatkit_standin.requests_to(SESSIONS, "POST")
    cancels = [r.path for r in chatkit_standin.requests if r.method == "POST" and r.path.endswith("/cancel")]
    [session_id] = [path.split("/")[-2] for path in cancels]
    assert chatkit_standin.session(session_id)["status"] == "cancelled"
    assert chatkit_standin.session(session_id)["user"] == created.body["user"]


# Cancel (logout)


def test_cancel_cancels_the_current_users_active_sessions_only(session_app, chatkit_standin, database_url):
    alice, bob = session_app.test_client(), session_app.test_client()
    alice.post("/api/chatkit/session")
    alice.post("/api/chatkit/session")
    bob.post("/api/chatkit/session")
    response = alice.post("/api/chatkit/session/cancel")
    statuses = {(row.user_id == _user_of(chatkit_standin, 0), row.status) for row in _rows(database_url)}
    assert response.get_json() == {"cancelled": 2}
    assert statuses == {(True, "cancelled"), (False, "active")}
    assert alice.post("/api/chatkit/session/cancel").get_json() == {"cancelled": 0}


# Threads


def _identified(browser, chatkit_standin) -> str:
    browser.post("/api/chatkit/session")
    return _user_of(chatkit_standin)


def test_threads_lists_only_the_current_users_threads(browser, chatkit_standin):
    user = _identified(browser, chatkit_standin)
    mine = chatkit_standin.add_thread(user, title="mine")
    chatkit_standin.add_thread("someone-else")
    response = browser.get("/api/chatkit/threads")
    [sent] = chatkit_standin.requests_to("/v1/chatkit/threads", "GET")
    assert [t["id"] for t in response.get_json()["data"]] == [mine]
    assert sent.query["user"] == user


def test_threads_limit_is_capped_at_100_and_paging_is_passed_through(browser, chatkit_standin):
    user = _identified(browser, chatkit_standin)
    after = chatkit_standin.add_thread(user)
    browser.get("/api/chatkit/threads", query_string={"limit": 500, "order": "asc", "after": after})
    [sent] = chatkit_standin.requests_to("/v1/chatkit/threads", "GET")
    assert sent.query == {"user": user, "limit": "100", "order": "asc", "after": after}


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "x"}, {"order": "sideways"}, {"after": "../x"}])
def test_threads_rejects_bad_paging_with_400(browser, query):
    assert browser.get("/api/chatkit/threads", query_string=query).status_code == 400


def test_delete_own_thread(browser, chatkit_standin):
    thread = chatkit_standin.add_thread(_identified(browser, chatkit_standin))
    response = browser.delete(f"/api/chatkit/threads/{thread}")
    assert response.get_json() == {"id": thread, "deleted": True}
    assert chatkit_standin.requests_to(f"/v1/chatkit/threads/{thread}", "DELETE")


def test_delete_another_users_thread_is_404_and_deletes_nothing(browser, chatkit_standin):
    _identified(browser, chatkit_standin)
    thread = chatkit_standin.add_thread("someone-else")
    response = browser.delete(f"/api/chatkit/threads/{thread}")
    assert response.status_code == 404
    assert not chatkit_standin.requests_to(f"/v1/chatkit/threads/{thread}", "DELETE")


def test_delete_unknown_thread_is_404(browser, chatkit_standin):
    _identified(browser, chatkit_standin)
    assert browser.delete("/api/chatkit/threads/cthr_missing").status_code == 404


def test_delete_with_an_unsafe_thread_id_is_400_and_never_reaches_upstream(browser, chatkit_standin):
    response = browser.delete("/api/chatkit/threads/cthr%3Fuser%3Dx")
    assert response.status_code == 400
    assert chatkit_standin.requests == []


# Rate limits


def test_session_create_is_limited_per_user_with_retry_after(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_SESSION_RATE_LIMIT="2/minute")
    browser = app.test_client()
    statuses = [browser.post("/api/chatkit/session").status_code for _ in range(3)]
    limited = browser.post("/api/chatkit/refresh", json={"token": "ek_x"})
    assert statuses[:2] == [200, 200]
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


def test_dropping_the_cookie_does_not_escape_the_per_address_limit(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS="3/minute")
    statuses = [app.test_client().post("/api/chatkit/session").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_first_visits_from_one_address_do_not_share_a_per_user_budget(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_SESSION_RATE_LIMIT="2/minute")
    # Five visitors behind one office address, each on a first visit (no cookie yet).
    statuses = [app.test_client().post("/api/chatkit/session").status_code for _ in range(5)]
    assert statuses == [200] * 5


def test_successful_answers_carry_no_retry_after(browser):
    response = browser.post("/api/chatkit/session")
    assert response.status_code == 200
    assert "Retry-After" not in response.headers


def test_threads_are_limited_per_user(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_THREADS_RATE_LIMIT="1/minute")
    browser = app.test_client()
    browser.post("/api/chatkit/session")  # the visitor now has an identity to be counted by
    statuses = [browser.get("/api/chatkit/threads").status_code for _ in range(2)]
    other_user = app.test_client().get("/api/chatkit/threads", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert statuses == [200, 429]
    assert other_user.status_code == 200
