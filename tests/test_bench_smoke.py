"""The benchmark harness in --quick mode, so that it cannot rot. No assertion on speed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.slow

SESSION_SERVERS = ("standin", "ours", "passthrough", "seed_fastapi", "starter_fastapi_httpx")
EXPECTED_ROWS = {
    *(f"session.{server}.{latency}" for server in SESSION_SERVERS for latency in ("0ms", "300ms")),
    "health.ours",
    "trivial.sqlite",
    "analytics_single.sqlite",
    "analytics_batch.sqlite",
    "trivial.postgres",
    "analytics_single.postgres",
    "analytics_batch.postgres",
    # Self-hosted ChatKit (issue 13): ours on SQLite in quick mode; PostgreSQL and the peer are skipped.
    "chat_ttft.standin",
    "chat_turns.ours.sqlite",
    "chat_ttft.ours.sqlite",
    "chat_turns.ours.postgres",
    "chat_ttft.ours.postgres",
    "chat_turns.peer",
    "chat_ttft.peer",
    "chat_streams.ours",
    "chat_streams.peer",
}
ROW_STATUSES = {"ok", "not available", "skipped", "error"}
OWN_ROWS = (
    "session.ours.0ms",
    "session.ours.300ms",
    "health.ours",
    "trivial.sqlite",
    "analytics_single.sqlite",
    "analytics_batch.sqlite",
)


def test_quick_run_writes_results_with_every_row(tmp_path):
    if shutil.which("wrk") is None:
        message = "wrk is not installed (apt-get install wrk); the bench smoke run needs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATKIT_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results-dir", str(tmp_path), "--json-name", "smoke.json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert json.loads((tmp_path / "latest.json").read_text()) == results
    assert results["machine"]["cores"] >= 1
    assert results["machine"]["python"]
    assert results["date"]
    assert results["command"].startswith("python -m bench --quick")
    rows = {row["id"]: row for row in results["rows"]}
    assert set(rows) == EXPECTED_ROWS
    assert {row["status"] for row in rows.values()} <= ROW_STATUSES
    # The rows that need no merged route must have measured something, errors counted.
    for row_id in ("session.standin.0ms", "session.passthrough.0ms", *OWN_ROWS):
        assert rows[row_id]["status"] == "ok", rows[row_id]
        assert rows[row_id]["requests"] > 0
        assert "non_2xx" in rows[row_id]
    # The service's own rows (limits lifted by the harness) answer every request with a 2xx.
    for row_id in OWN_ROWS:
        assert (rows[row_id]["non_2xx"], rows[row_id]["socket_errors"]) == (0, 0), rows[row_id]
    # The self-hosted rows stream real turns through gunicorn: every turn answered and stored, /metrics agreeing.
    for row_id in ("chat_ttft.standin", "chat_turns.ours.sqlite", "chat_ttft.ours.sqlite", "chat_streams.ours"):
        assert rows[row_id]["status"] == "ok", rows[row_id]
        assert rows[row_id]["failed"] == 0, rows[row_id]
    assert rows["chat_turns.ours.sqlite"]["stored_check"] == "ok"
    assert rows["chat_turns.ours.sqlite"]["metrics_check"] == "ok"
    assert rows["chat_streams.ours"]["all_completed"] is True
    assert rows["chat_streams.ours"]["health_p99_ms"] is not None
    assert results["selfhosted_startup"]["status"] == "ok"
    assert results["memory"]
    assert results["startup"]["status"] == "ok"
    assert {t["met"] for t in results["targets"]} <= {True, False, None}
    assert "| target (issue 6) |" in result.stdout
    assert "session.ours.300ms" in result.stdout
    assert "| chat_turns.ours.sqlite |" in result.stdout
