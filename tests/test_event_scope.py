"""Client event ids are idempotency keys per sender, not across users (finding 12).

A second user's event with the same client id used to be dropped silently; the id now only
deduplicates retries of one user (or one address, without an identity), in the database and in the
outage spool's replay alike.
"""

from __future__ import annotations

import time

import jwt
import pytest

from chatkit_backend.analytics.spool import Spool
from tests.analytics_support import count_rows

JWT_SECRET = "jwt-secret-for-event-scope-tests-0123456789"


@pytest.fixture
def app(analytics_app):
    return analytics_app(CHATKIT_IDENTITY_MODE="jwt", CHATKIT_JWT_SECRET=JWT_SECRET)


def as_user(sub: str) -> dict[str, str]:
    token = jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, JWT_SECRET, "HS256")
    return {"Authorization": f"Bearer {token}"}


def post(app, path: str, body, headers=None, address: str = "127.0.0.1"):
    response = app.test_client().post(path, json=body, headers=headers or {}, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_two_users_events_with_the_same_client_id_are_both_stored_and_retries_once(app):
    for user in ("alice", "bob", "alice", "bob"):  # each retried once
        post(app, "/api/analytics/message", {"id": "evt-1", "name": user}, as_user(user))
        post(app, "/api/analytics/events", [{"type": "thread_change", "id": "evt-1"}], as_user(user))
    assert count_rows(app, "analytics_events", "kind = 'message'") == 2
    assert count_rows(app, "analytics_events", "kind = 'thread_change'") == 2
    assert count_rows(app, "analytics_events", "user_id = 'alice'") == 2
    assert count_rows(app, "analytics_events", "user_id = 'bob'") == 2


def test_two_users_error_reports_with_the_same_client_id_are_both_counted(app):
    for user in ("alice", "bob", "bob"):
        post(app, "/api/errors", {"id": "err-1", "message": "Upload failed"}, as_user(user))
    assert count_rows(app, "analytics_error_reports") == 2
    assert count_rows(app, "analytics_error_groups", "count = 2") == 1


def test_without_an_identity_the_client_id_is_scoped_to_the_address(app):
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.1"):
        post(app, "/api/analytics/message", {"id": "anon-1"}, address=address)
    assert count_rows(app, "analytics_events") == 2
    # The scope is a keyed hash: the address is not stored (CHATKIT_ANALYTICS_STORE_CLIENT_ADDRESS is off).
    assert count_rows(app, "analytics_events", "client_address IS NULL AND scope NOT LIKE '%203.0.113%'") == 2


def _spooled_row(app, body, headers) -> list:
    """The (table, row) records the store would spool for this request, built by the real request path."""
    store = app.extensions["chatkit_analytics"]
    captured = []
    original = store.write
    store.write = lambda records: captured.extend(records)
    try:
        post(app, "/api/analytics/message", body, headers)
    finally:
        store.write = original
    return captured


def test_spool_replay_keeps_exactly_once_per_user_with_the_new_key(app):
    spool: Spool = app.extensions["chatkit_analytics"].spool
    alice = _spooled_row(app, {"id": "spooled-1"}, as_user("alice"))
    bob = _spooled_row(app, {"id": "spooled-1"}, as_user("bob"))
    # Both users' events, each spooled twice (a retried POST during the outage), one already stored.
    post(app, "/api/analytics/message", {"id": "spooled-1"}, as_user("alice"))
    spool.append(alice + bob + alice + bob)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["analytics", "replay-spool"]).exit_code == 0
    spool.append(bob)  # and once more after the replay
    assert runner.invoke(args=["analytics", "replay-spool"]).exit_code == 0
    assert count_rows(app, "analytics_events", "event_key = 'message:spooled-1'") == 2


def test_rows_spooled_before_scopes_existed_are_replayed_once_in_the_legacy_scope(app):
    spool: Spool = app.extensions["chatkit_analytics"].spool
    [(table, row)] = _spooled_row(app, {"id": "old-1"}, as_user("alice"))
    del row["scope"]  # what the previous version wrote to the spool
    spool.append([(table, row), (table, dict(row))])
    assert app.test_cli_runner().invoke(args=["analytics", "replay-spool"]).exit_code == 0
    spool.append([(table, dict(row))])
    assert app.test_cli_runner().invoke(args=["analytics", "replay-spool"]).exit_code == 0
    assert count_rows(app, "analytics_events", "event_key = 'message:old-1' AND scope = ''") == 1
