"""A row the database refuses (finding 3): it fails only the request that sent it, never the shared group commit.

The database is held (a table lock, or SQLite's write lock) while the requests queue, so they all
meet in one group commit, as 20 users creating sessions at the same moment did.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager

from sqlalchemy import make_url, text
from sqlalchemy.exc import DataError, IntegrityError

from chatkit_backend.db import GroupCommitter
from chatkit_backend.sessions.registry import SessionRegistry
from chatkit_backend.upstream import ChatKitSession
from tests.analytics_support import column_values, count_rows

CALLERS = 20


@contextmanager
def database_held(database):
    """Hold the database's write lock until the block ends (a table lock on PostgreSQL)."""
    if database.is_sqlite:
        connection = sqlite3.connect(make_url(database.url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    with database.engine.connect() as connection, connection.begin():
        connection.execute(text("LOCK TABLE chatkit_sessions, analytics_events IN EXCLUSIVE MODE"))
        yield


def wait_until_queued(committer: GroupCommitter, count: int) -> None:
    deadline = time.monotonic() + 10
    while committer._queue.qsize() < count:
        assert time.monotonic() < deadline, f"only {committer._queue.qsize()} of {count} callers queued"
        time.sleep(0.01)


def run_together(committer: GroupCommitter, database, calls: dict[str, object]) -> dict[str, object]:
    """Run every call in its own thread, all queued in one group commit; their results or errors, by name."""
    results: dict[str, object] = {}

    def run(name: str, call) -> None:
        try:
            results[name] = call()
        except Exception as error:  # noqa: BLE001 - the test looks at who got which error
            results[name] = error

    names = list(calls)
    with database_held(database):
        first = threading.Thread(target=run, args=(names[0], calls[names[0]]))
        first.start()
        wait_until_queued(committer, 0)  # the committer took the first caller and waits on the lock
        time.sleep(0.1)
        threads = [threading.Thread(target=run, args=(name, calls[name])) for name in names[1:]]
        for thread in threads:
            thread.start()
        wait_until_queued(committer, len(threads))
    for thread in [first, *threads]:
        thread.join(30)
    return results


def _session(number: int) -> ChatKitSession:
    return ChatKitSession(
        id=f"cksess_{number}",
        client_secret=f"ek_secret_{number}",
        expires_at=int(time.time()) + 600,
        status="active",
        user="",
        workflow_id="wf_test",
    )


def test_a_session_row_the_database_refuses_fails_only_its_own_request(make_app, database_url):
    database = make_app(DATABASE_URL=database_url).extensions["chatkit_db"]
    registry = SessionRegistry(database)
    # What a JWT `sub` with a NUL did on PostgreSQL (SQLite takes NUL: a missing user id there).
    poison = None if database.is_sqlite else "nul\x00user"
    calls = {f"user-{n}": (lambda n=n: registry.record(_session(n), f"user-{n}")) for n in range(CALLERS)}
    calls["poison"] = lambda: registry.record(_session(999), poison)
    committer = registry._committer()
    results = run_together(committer, database, calls)
    assert isinstance(results.pop("poison"), DataError | IntegrityError)
    assert results == {f"user-{n}": None for n in range(CALLERS)}
    assert count_rows_of(database, "chatkit_sessions") == CALLERS


def count_rows_of(database, table: str) -> int:
    with database.engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608


def test_an_analytics_row_the_database_refuses_is_set_aside_alone(analytics_app):
    app = analytics_app()
    store = app.extensions["chatkit_analytics"]
    with app.test_request_context():
        from chatkit_backend.analytics.events import parse_event
        from chatkit_backend.analytics.ingest import received_now

        received = received_now()
        rows = {f"e{n}": parse_event("message", {"id": f"e{n}"}, received) for n in range(CALLERS)}
    poison = {**parse_event("message", {"id": "poison"}, received), "kind": None}  # NOT NULL
    calls = {name: (lambda row=row: store.write([("events", row)])) for name, row in rows.items()}
    calls["poison"] = lambda: store.write([("events", poison), ("events", {**rows["e0"], "event_key": "message:x"})])
    results = run_together(store._committer, store.database, calls)
    assert set(results.values()) == {"stored"}
    stored = column_values(app, "analytics_events", "event_key")
    assert sorted(stored) == sorted([f"message:e{n}" for n in range(CALLERS)] + ["message:x"])
    # Nothing spooled: the database was up. The refused row waits for the operator.
    assert not store.spool.has_pending()
    kept = [json.loads(line) for line in store.spool.rejected_path.read_text().splitlines()]
    assert [row["event_key"] for _, row in kept] == ["message:poison"]
    assert count_rows(app, "analytics_events") == CALLERS + 1


def test_group_committer_isolates_the_caller_whose_row_is_refused():
    gate = threading.Event()
    batches: list[list[int]] = []

    def commit(items: list[int]) -> int:
        gate.wait(5)
        batches.append(items)
        if -1 in items:
            raise DataError("INSERT", {}, ValueError("refused"))
        return len(items)

    committer = GroupCommitter("isolating-committer", commit, idle_seconds=0.2, poll_seconds=0.05)
    results: dict[int, object] = {}

    def submit(value: int) -> None:
        try:
            results[value] = committer.submit([value, value])
        except DataError as error:
            results[value] = error

    values = [0, 1, 2, -1, 3, 4, 5]  # 0 holds the committer; the others meet in one batch
    threads = [threading.Thread(target=submit, args=(value,)) for value in values]
    threads[0].start()
    time.sleep(0.1)
    for thread in threads[1:]:
        thread.start()
    wait_until_queued(committer, len(threads) - 1)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert isinstance(results.pop(-1), DataError)
    assert results == dict.fromkeys(range(6), 2)
    assert sorted(batches[1]) == sorted([1, 1, 2, 2, -1, -1, 3, 3, 4, 4, 5, 5])  # together, refused
    assert sorted(map(tuple, batches[2:])) == sorted([(v, v) for v in values[1:]])  # then each alone
