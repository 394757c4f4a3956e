"""`flask analytics export` and `flask analytics prune`."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from chatkit_backend.analytics.store import ERRORS, EVENTS, GROUPS
from chatkit_backend.sessions.models import SESSIONS
from tests.analytics_support import AnalyticsApps, count_rows


@pytest.fixture
def app(make_app, database_url, tmp_path):
    apps = AnalyticsApps(make_app, database_url, tmp_path)
    yield apps()
    apps.close()


def _post_and_date(app, key: str, when: datetime) -> None:
    app.test_client().post("/api/analytics/message", json={"id": key, "data": {"n": 1}})
    with app.extensions["chatkit_db"].engine.begin() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.event_key == f"message:{key}").values(received_at=when))


def test_export_writes_json_lines_filtered_by_time(app, tmp_path):
    _post_and_date(app, "old", datetime(2026, 1, 1, tzinfo=UTC))
    _post_and_date(app, "new", datetime(2026, 6, 1, tzinfo=UTC))
    output = tmp_path / "events.jsonl"
    result = app.test_cli_runner().invoke(
        args=["analytics", "export", "--since", "2026-03-01", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["event_key"] for line in lines] == ["message:new"]
    assert lines[0]["data"] == {"n": 1}
    assert lines[0]["received_at"].startswith("2026-06-01T00:00:00")
    assert "exported 1 events" in result.output


def test_export_writes_error_reports_as_csv(app, tmp_path):
    app.test_client().post("/api/errors", json={"message": "CSV boom", "context": {"a": 1}})
    output = tmp_path / "errors.csv"
    result = app.test_cli_runner().invoke(
        args=["analytics", "export", "--table", "errors", "--format", "csv", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(output.read_text().splitlines()))
    assert row["message"] == "CSV boom"
    assert json.loads(row["context"]) == {"a": 1}


def test_export_rejects_a_bad_time(app):
    result = app.test_cli_runner().invoke(args=["analytics", "export", "--until", "soon"])
    assert result.exit_code != 0
    assert "ISO 8601" in result.output


def test_prune_deletes_rows_older_than_the_retention(app):
    now = datetime.now(UTC)
    _post_and_date(app, "ancient", now - timedelta(days=100))
    _post_and_date(app, "recent", now - timedelta(days=10))
    app.test_client().post("/api/errors", json={"message": "old error"})
    with app.extensions["chatkit_db"].engine.begin() as connection:
        connection.execute(update(ERRORS).values(received_at=now - timedelta(days=100)))
        connection.execute(
            update(GROUPS).values(first_seen=now - timedelta(days=100), last_seen=now - timedelta(days=100))
        )
    result = app.test_cli_runner().invoke(args=["analytics", "prune"])
    assert result.exit_code == 0, result.output
    assert "pruned 1 events, 1 errors, 1 error_groups, 0 sessions, 0 conversations," in result.output
    assert count_rows(app, "analytics_events") == 1
    assert count_rows(app, "analytics_error_reports") == 0
    result = app.test_cli_runner().invoke(args=["analytics", "prune", "--days", "5"])
    assert "pruned 1 events" in result.output
    assert count_rows(app, "analytics_events") == 0


def test_prune_deletes_long_expired_sessions_and_keeps_live_ones(app):
    now = datetime.now(UTC)
    with app.extensions["chatkit_db"].engine.begin() as connection:
        for session_id, expires in (
            ("cksess_old", now - timedelta(days=100)),
            ("cksess_live", now + timedelta(minutes=5)),
        ):
            connection.execute(
                insert(SESSIONS).values(
                    id=session_id,
                    user_id="u1",
                    secret_sha256=session_id.ljust(64, "0"),
                    workflow_id="wf_1",
                    status="active",
                    created_at=expires - timedelta(minutes=10),
                    expires_at=expires,
                )
            )
    result = app.test_cli_runner().invoke(args=["analytics", "prune"])
    assert result.exit_code == 0, result.output
    assert "1 sessions" in result.output
    with app.extensions["chatkit_db"].engine.connect() as connection:
        remaining = connection.execute(select(SESSIONS.c.id)).scalars().all()
    assert remaining == ["cksess_live"]


FORMULAS = ['=HYPERLINK("https://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def test_csv_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(app, tmp_path):
    client = app.test_client()
    for index, formula in enumerate(FORMULAS):
        client.post("/api/analytics/message", json={"id": f"f{index}", "name": formula, "thread_id": formula})
    output = tmp_path / "events.csv"
    result = app.test_cli_runner().invoke(args=["analytics", "export", "--format", "csv", "-o", str(output)])
    assert result.exit_code == 0, result.output
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == ["'" + formula for formula in FORMULAS]
    assert [row["thread_id"] for row in rows] == ["'" + formula for formula in FORMULAS]
    cells = [cell for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
