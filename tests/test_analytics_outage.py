"""Durability: while the database is away events go to the spool (2xx), and come back exactly once."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from chatkit_backend.analytics.spool import Spool
from tests.analytics_support import count_rows, wait_for
from tests.tcp_proxy import TcpProxy

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class SqliteOutage:
    """Makes the SQLite file unreachable (a directory in its place) and brings it back intact."""

    def __init__(self, app, url: str) -> None:
        self.app = app
        self.path = Path(url.split("///", 1)[1])
        self.away = self.path.parent / "away"

    def take_away(self) -> None:
        self.app.extensions["chatkit_db"].engine.dispose()
        self.away.mkdir()
        for file in self.path.parent.glob(self.path.name + "*"):
            shutil.move(file, self.away / file.name)
        self.path.mkdir()

    def bring_back(self) -> None:
        self.path.rmdir()
        for file in self.away.iterdir():
            shutil.move(file, self.path.parent / file.name)
        self.away.rmdir()


def post_events(client, ids):
    """Post one message event per id; returns the ids answered with 2xx."""
    acknowledged = []
    for event_id in ids:
        response = client.post("/api/analytics/message", json={"id": event_id})
        assert response.status_code == 200, response.get_data(as_text=True)
        acknowledged.append(event_id)
    return acknowledged


def stored_ids(app) -> list[str]:
    with app.extensions["chatkit_db"].engine.connect() as connection:
        return list(connection.execute(text("SELECT event_key FROM analytics_events")).scalars())


def assert_each_acknowledged_once(app, acknowledged):
    keys = stored_ids(app)
    assert len(keys) == len(set(keys)) == len(acknowledged)
    assert sorted(keys) == sorted(f"message:{event_id}" for event_id in acknowledged)


@SQLITE_ONLY
def test_sqlite_outage_spools_and_every_acknowledged_event_is_stored_once(analytics_app, database_url):
    url = database_url
    app = analytics_app()
    client = app.test_client()
    spool = app.extensions["chatkit_analytics"].spool
    outage = SqliteOutage(app, url)

    acknowledged = post_events(client, [f"before-{i}" for i in range(20)])
    outage.take_away()
    acknowledged += post_events(client, [f"during-{i}" for i in range(20)])
    assert spool.has_pending()
    outage.bring_back()
    acknowledged += post_events(client, [f"after-{i}" for i in range(20)])
    wait_for(lambda: not spool.has_pending(), what="the spool to be replayed")
    assert_each_acknowledged_once(app, acknowledged)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_outage_through_a_proxy_spools_and_every_acknowledged_event_is_stored_once(
    analytics_app, database_url
):
    postgres_server_url = database_url
    parts = urlsplit(postgres_server_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    app = analytics_app(DATABASE_URL=urlunsplit(parts._replace(netloc=netloc)))
    spool = app.extensions["chatkit_analytics"].spool

    def post_batch(prefix):
        # Several threads at once, so that group commits are in flight when the database goes.
        ids = [f"{prefix}-{i}" for i in range(40)]
        with ThreadPoolExecutor(4) as pool:
            return [
                i
                for chunk in pool.map(lambda c: post_events(app.test_client(), c), [ids[k::4] for k in range(4)])
                for i in chunk
            ]

    try:
        acknowledged = post_batch("before")
        proxy.cut()
        acknowledged += post_batch("during")
        assert spool.has_pending()
        proxy.start()
        acknowledged += post_batch("after")
        wait_for(lambda: not spool.has_pending(), what="the spool to be replayed")
    finally:
        proxy.cut()
        app.extensions["chatkit_db"].engine.dispose()
    direct = analytics_app(DATABASE_URL=postgres_server_url)
    assert_each_acknowledged_once(direct, acknowledged)


@SQLITE_ONLY
def test_neither_database_nor_spool_answers_503_in_the_error_contract(analytics_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'gone.sqlite3'}"
    (tmp_path / "blocker").write_text("a file where the spool's folder should be")
    app = analytics_app(DATABASE_URL=url, CHATKIT_ANALYTICS_SPOOL_PATH=str(tmp_path / "blocker" / "spool.jsonl"))
    SqliteOutage(app, url).take_away()
    response = app.test_client().post("/api/analytics/message", json={"id": "lost"})
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "analytics_unavailable"
    assert error["request_id"]
    assert response.headers["Retry-After"]


@SQLITE_ONLY
def test_spool_is_replayed_by_the_cli_exactly_once(analytics_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    app = analytics_app(DATABASE_URL=url)
    outage = SqliteOutage(app, url)
    outage.take_away()
    acknowledged = post_events(app.test_client(), [f"e{i}" for i in range(5)])
    errors = app.test_client().post("/api/errors", json={"id": "err-1", "message": "Spooled boom"})
    assert errors.status_code == 200
    outage.bring_back()
    result = app.test_cli_runner().invoke(args=["analytics", "replay-spool"])
    assert result.exit_code == 0, result.output
    assert "replayed 6 spooled rows" in result.output
    again = app.test_cli_runner().invoke(args=["analytics", "replay-spool"])
    assert "replayed 0 spooled rows" in again.output
    assert_each_acknowledged_once(app, acknowledged)
    assert count_rows(app, "analytics_error_groups", "count = 1") == 1


@SQLITE_ONLY
def test_spool_left_from_a_previous_run_is_replayed_at_start(analytics_app, tmp_path):
    first = analytics_app()
    spool: Spool = first.extensions["chatkit_analytics"].spool
    spool.path.write_text(
        '["events",{"event_key":"message:old","kind":"message","event":null,"name":null,"thread_id":null,'
        '"item_id":null,"client_timestamp":null,"received_at":"2026-11-20T10:00:00+00:00","user_id":null,'
        '"request_id":null,"user_agent":null,"client_address":null,"data":null,"extra":null}]\n'
    )
    restarted = analytics_app()
    assert restarted.test_client().get("/health").status_code == 200
    wait_for(lambda: count_rows(restarted, "analytics_events") == 1, what="the replay at start")
    assert not spool.has_pending()


def test_torn_last_line_of_the_spool_is_skipped(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([("events", {"event_key": "a"})])
    with open(spool.path, "a") as handle:
        handle.write('["events",{"event_k')
    replayed = []
    assert spool.replay(replayed.extend) == 1
    assert [row["event_key"] for _, row in replayed] == ["a"]
    assert not spool.has_pending()


def spooled_event(key: str, **changes) -> str:
    """One spool line: an events row as the store writes it, with `changes` applied."""
    row = {
        "event_key": key,
        "kind": "message",
        "event": None,
        "name": None,
        "thread_id": None,
        "item_id": None,
        "client_timestamp": None,
        "received_at": "2026-11-20T10:00:00+00:00",
        "user_id": None,
        "request_id": None,
        "user_agent": None,
        "client_address": None,
        "data": None,
        "extra": None,
        **changes,
    }
    return json.dumps(["events", row]) + "\n"


def test_a_row_the_database_refuses_is_set_aside_and_the_rest_of_the_spool_is_stored(analytics_app, database_url):
    app = analytics_app(DATABASE_URL=database_url)
    spool: Spool = app.extensions["chatkit_analytics"].spool
    # kind is NOT NULL: the database refuses this row on every retry.
    spool.path.write_text(
        spooled_event("message:a") + spooled_event("message:poison", kind=None) + spooled_event("message:b")
    )
    result = app.test_cli_runner().invoke(args=["analytics", "replay-spool"])
    assert result.exit_code == 0, result.output
    assert sorted(stored_ids(app)) == ["message:a", "message:b"]
    assert not spool.has_pending()
    kept = [json.loads(line) for line in spool.rejected_path.read_text().splitlines()]
    assert [row["event_key"] for _, row in kept] == ["message:poison"]
    # The rejected file is for the operator: later replays leave it alone.
    app.test_cli_runner().invoke(args=["analytics", "replay-spool"])
    assert sorted(stored_ids(app)) == ["message:a", "message:b"]
    assert len(spool.rejected_path.read_text().splitlines()) == 1
