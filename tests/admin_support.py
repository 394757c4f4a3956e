"""Seeding known analytics data for the admin API and dashboard tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import insert, update

from chatkit_backend.analytics.store import ERRORS, EVENTS, GROUPS
from chatkit_backend.sessions.models import SESSIONS

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
DAY1 = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
DAY2 = datetime(2026, 11, 19, 14, 0, tzinfo=UTC)
RANGE = "since=2026-11-17T00:00:00Z&until=2026-11-21T00:00:00Z&bucket=day"


def _backdate(app: Flask, table, keys: list[str], when: datetime) -> None:
    with app.extensions["chatkit_db"].engine.begin() as connection:
        connection.execute(update(table).where(table.c.event_key.in_(keys)).values(received_at=when))


def seed(app: Flask) -> None:
    """Day 1: 3 messages, 1 thread change, 2 sessions; day 2: 5 messages, 2 thread changes, 1 session; errors 3+1."""
    client = app.test_client()
    plan = {DAY1: (3, 1), DAY2: (5, 2)}
    for day, (messages, changes) in plan.items():
        tag = day.strftime("%d")
        keys = []
        for i in range(messages):
            client.post("/api/analytics/message", json={"id": f"m{tag}-{i}"})
            keys.append(f"message:m{tag}-{i}")
        for i in range(changes):
            client.post("/api/analytics/thread-change", json={"id": f"t{tag}-{i}", "thread_id": f"cthr_{i}"})
            keys.append(f"thread_change:t{tag}-{i}")
        _backdate(app, EVENTS, keys, day)
    for i in range(3):
        client.post("/api/errors", json={"id": f"e{i}", "message": f"Upload failed after {i} retries"})
    client.post("/api/errors", json={"id": "e9", "message": "Network down"})
    _backdate(app, ERRORS, ["error:e0", "error:e1", "error:e2", "error:e9"], DAY2)
    with app.extensions["chatkit_db"].engine.begin() as connection:
        connection.execute(update(GROUPS).values(first_seen=DAY2, last_seen=DAY2))
    sessions = [
        {
            "id": f"cksess_{i}",
            "user_id": f"user-{i}",
            "secret_sha256": f"{i:064d}",
            "workflow_id": "wf_1",
            "status": "active",
            "created_at": day,
            "expires_at": day + timedelta(minutes=10),
        }
        for i, day in enumerate([DAY1, DAY1, DAY2])
    ]
    with app.extensions["chatkit_db"].engine.begin() as connection:
        connection.execute(insert(SESSIONS), sessions)
