"""Analytics ingest: validation, size caps, idempotency, batches, error reports and what the server adds."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from chatkit_backend.analytics.store import EVENTS
from tests.analytics_support import column_values, count_rows, rows


@pytest.fixture
def app(analytics_app):
    return analytics_app()


def stored_events(app):
    return rows(app, EVENTS)


def test_message_event_is_stored_with_server_fields(app, client):
    body = {"id": "m-1", "thread_id": "cthr_1", "event": "response.start", "data": {"ms": 5}, "custom": "kept"}
    response = client.post("/api/analytics/message", json=body, headers={"User-Agent": "pytest-agent"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "tracked"}
    [row] = stored_events(app)
    assert row["kind"] == "message"
    assert (row["thread_id"], row["event"], row["event_key"]) == ("cthr_1", "response.start", "message:m-1")
    assert row["data"] == {"ms": 5}
    assert row["extra"] == {"custom": "kept"}
    assert row["user_agent"] == "pytest-agent"
    assert row["request_id"] == response.headers["X-Request-ID"]
    assert row["received_at"] is not None
    assert row["client_address"] is None


def test_thread_change_accepts_chatkit_thread_id_name(app, client):
    response = client.post("/api/analytics/thread-change", json={"threadId": "cthr_9"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "tracked"}
    assert column_values(app, "analytics_events", "thread_id") == ["cthr_9"]
    assert column_values(app, "analytics_events", "kind") == ["thread_change"]


def test_client_timestamp_in_milliseconds_and_iso_are_accepted(app, client):
    assert client.post("/api/analytics/message", json={"timestamp": 1_700_000_000_000}).status_code == 200
    assert client.post("/api/analytics/message", json={"timestamp": "2026-11-21T10:00:00Z"}).status_code == 200
    assert count_rows(app, "analytics_events", "client_timestamp IS NOT NULL") == 2


def test_event_over_the_size_cap_is_413(analytics_app):
    app = analytics_app(CHATKIT_ANALYTICS_MAX_EVENT_BYTES="1024")
    response = app.test_client().post("/api/analytics/message", json={"data": {"text": "x" * 2000}})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "event_too_large"
    assert count_rows(app, "analytics_events") == 0


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
def test_body_that_is_not_an_object_is_400(client, body):
    response = client.post("/api/analytics/message", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in ("invalid_body", "invalid_json")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("thread_id", 5),
        ("item_id", ["x"]),
        ("event", {}),
        ("name", 1),
        ("data", "x"),
        ("timestamp", "soon"),
        ("id", ""),
        # An integer id longer than a string id may be: its key would not fit event_key (PostgreSQL refuses it).
        ("id", int("9" * 129)),
    ],
)
def test_wrong_type_is_a_validation_error_naming_the_field(app, client, field, value):
    response = client.post("/api/analytics/message", json={field: value})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == [field]
    assert count_rows(app, "analytics_events") == 0


def test_retried_event_with_the_same_id_is_stored_once(app, client):
    for _ in range(3):
        assert client.post("/api/analytics/message", json={"id": "retry-1"}).status_code == 200
    assert client.post("/api/analytics/events", json=[{"type": "message", "id": "retry-1"}]).status_code == 200
    assert count_rows(app, "analytics_events") == 1


def test_retried_error_report_is_stored_and_counted_once(app, client):
    for _ in range(3):
        assert client.post("/api/errors", json={"id": 7, "message": "Boom"}).status_code == 200
    assert count_rows(app, "analytics_error_reports") == 1
    assert column_values(app, "analytics_error_groups", "count", order="fingerprint") == [1]


def test_client_address_is_stored_only_when_configured(analytics_app):
    app = analytics_app(CHATKIT_ANALYTICS_STORE_CLIENT_ADDRESS="true")
    app.test_client().post("/api/analytics/message", json={}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert column_values(app, "analytics_events", "client_address") == ["198.51.100.7"]


def test_user_is_taken_from_the_identity_without_creating_one(app, client, monkeypatch):
    monkeypatch.setattr("chatkit_backend.analytics.ingest.peek_user", lambda: "user-42")
    response = client.post("/api/analytics/message", json={})
    assert column_values(app, "analytics_events", "user_id") == ["user-42"]
    assert "Set-Cookie" not in response.headers


def test_batch_accepts_valid_events_and_reports_rejected_ones_by_index(app, client):
    batch = [
        {"type": "message", "event": "response.end"},
        {"type": "unknown"},
        {"type": "thread_change", "thread_id": 3},
        "not an object",
        {"type": "error", "message": "Crash"},
        {"type": "log", "name": "chatkit.log", "data": {"k": "v"}},
    ]
    response = client.post("/api/analytics/events", json=batch)
    assert response.status_code == 200
    body = response.get_json()
    assert body["accepted"] == 3
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "validation_error"),
        (2, "validation_error"),
        (3, "invalid_body"),
    ]
    assert body["rejected"][1]["details"] == [{"field": "thread_id", "message": "must be a string"}]
    assert column_values(app, "analytics_events", "kind") == ["message", "log"]
    assert count_rows(app, "analytics_error_reports") == 1


def test_batch_over_the_count_cap_is_413(analytics_app):
    app = analytics_app(CHATKIT_ANALYTICS_MAX_BATCH_EVENTS="2")
    response = app.test_client().post("/api/analytics/events", json=[{"type": "message"}] * 3)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "batch_too_large"
    assert count_rows(app, "analytics_events") == 0


def test_batch_event_over_the_size_cap_is_rejected_by_index(analytics_app):
    app = analytics_app(CHATKIT_ANALYTICS_MAX_EVENT_BYTES="512")
    batch = [{"type": "message"}, {"type": "message", "data": {"t": "x" * 600}}]
    body = app.test_client().post("/api/analytics/events", json=batch).get_json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["code"] == "event_too_large"


def test_batch_that_is_not_an_array_is_400(client):
    response = client.post("/api/analytics/events", json={"type": "message"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_body"


def test_error_report_is_logged_scrubbed_before_storage(app, client):
    report = {
        "message": "Fetch failed for jane@example.com with Bearer abc.def.ghi",
        "stack": "Error\n    at load (https://app.example/main.js?token=s3cr3t:10:5)",
        "url": "https://app.example/chat?email=jane%40example.com&session=ek_1234567890abcdef",
        "component": "ChatPanel",
        "level": "warning",
        "context": {"apiKey": "sk-live-1234567890", "note": "key sk-proj-ABCDEFGH12345678 used"},
        "extra_field": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl",
    }
    response = client.post("/api/errors", json=report)
    assert response.status_code == 200
    assert response.get_json() == {"status": "logged"}
    with app.extensions["chatkit_db"].engine.connect() as connection:
        stored = json.dumps(
            [list(map(str, row)) for row in connection.execute(text("SELECT * FROM analytics_error_reports"))]
            + [list(map(str, row)) for row in connection.execute(text("SELECT * FROM analytics_error_groups"))]
        )
    for secret in ("jane", "abc.def.ghi", "s3cr3t", "ek_1234567890abcdef", "sk-live", "sk-proj", "eyJhbGci"):
        assert secret not in stored
    assert "ChatPanel" in stored
    assert "warning" in stored


def test_every_stored_event_field_is_scrubbed(app, client):
    admin_token = "Zp3kQ9vL2mX8nR4tW6yB1cD5fG7hJ0aS-uE_iOq"
    client_secret = "ek_68f1a2b3c4d5e6f7a8b9c0d1_secret"
    event = {"name": f"token {admin_token}", "event": client_secret, "thread_id": client_secret, "item_id": admin_token}
    assert client.post("/api/analytics/message", json=event).status_code == 200
    report = {"message": "boom", "component": f"Panel {client_secret}"}
    batch = [{"type": "error", **report}, {"type": "log", "name": f"password={admin_token}"}]
    assert client.post("/api/analytics/events", json=batch).get_json()["accepted"] == 2
    assert client.post("/api/errors", json=report).status_code == 200
    with app.extensions["chatkit_db"].engine.connect() as connection:
        stored = json.dumps(
            [
                list(map(str, row))
                for table in ("analytics_events", "analytics_error_reports", "analytics_error_groups")
                for row in connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            ]
        )
    assert admin_token not in stored
    assert "ek_68f1a2b3c4d5e6f7" not in stored
    assert "Panel [redacted]" in stored


def test_chatkit_ids_are_stored_as_sent(app, client):
    thread = "cthr_68f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9"
    assert client.post("/api/analytics/message", json={"thread_id": thread, "item_id": "msg_1"}).status_code == 200
    assert column_values(app, "analytics_events", "thread_id") == [thread]
    assert column_values(app, "analytics_events", "item_id") == ["msg_1"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": 3}, "message"),
        ({"message": "x", "level": "loud"}, "level"),
        ({"message": "x", "context": []}, "context"),
        ({"message": "x", "stack": 1}, "stack"),
    ],
)
def test_error_report_with_wrong_fields_is_a_validation_error(client, body, field):
    response = client.post("/api/errors", json=body)
    assert response.status_code == 400
    assert [d["field"] for d in response.get_json()["error"]["details"]] == [field]


def test_error_reports_are_grouped_with_count_and_first_and_last_seen(app, client):
    for line in (10, 20, 30):
        report = {"message": f"Timeout after {line} ms", "stack": f"Error\n at poll (app.js:{line}:1)"}
        assert client.post("/api/errors", json=report).status_code == 200
    client.post("/api/errors", json={"message": "Other failure"})
    with app.extensions["chatkit_db"].engine.connect() as connection:
        groups = connection.execute(
            text("SELECT count, first_seen, last_seen FROM analytics_error_groups ORDER BY count DESC")
        ).all()
        reports = connection.execute(text("SELECT received_at FROM analytics_error_reports ORDER BY id")).scalars()
        received = list(reports)
    assert [g[0] for g in groups] == [3, 1]
    assert str(groups[0][1]) == str(received[0])
    assert str(groups[0][2]) == str(received[2])


def test_analytics_routes_share_one_limit_per_client_address(make_app):
    app = make_app(CHATKIT_ANALYTICS_RATE_LIMIT="3/minute")
    client = app.test_client()
    address = {"REMOTE_ADDR": "10.9.9.9"}
    answers = [
        client.post("/api/analytics/message", json={"event": "response.end"}, environ_base=address),
        client.post("/api/analytics/thread-change", json={"thread_id": "cthr_1"}, environ_base=address),
        client.post("/api/errors", json={"message": "boom"}, environ_base=address),
        client.post("/api/analytics/events", json=[{"type": "message"}], environ_base=address),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].get_json()["error"]["code"] == "rate_limited"
    assert int(answers[-1].headers["Retry-After"]) > 0
    other = client.post("/api/analytics/message", json={}, environ_base={"REMOTE_ADDR": "10.9.9.10"})
    assert other.status_code == 200
