"""Liveness and readiness."""

from __future__ import annotations


def test_health_answers_healthy(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "healthy"}


def test_ready_reports_missing_credentials_with_503(client):
    response = client.get("/ready")
    body = response.get_json()
    assert response.status_code == 503
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["chatkit_credentials"]["ok"] is False
    assert "OPENAI_API_KEY" in body["checks"]["chatkit_credentials"]["message"]


def test_ready_is_200_when_configured(make_app):
    app = make_app(OPENAI_API_KEY="sk-test", CHATKIT_WORKFLOW_ID="wf_test")
    response = app.test_client().get("/ready")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_ready_reports_unreachable_database_with_503(make_app, tmp_path):
    app = make_app(OPENAI_API_KEY="sk-test", CHATKIT_WORKFLOW_ID="wf_test")
    app.extensions["chatkit_db"].engine.dispose()
    (tmp_path / "app.sqlite3").unlink()
    (tmp_path / "app.sqlite3").mkdir()  # a directory where the file was: SQLite cannot open it
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False
