"""SQL storage: schema under Alembic, created without being asked, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, inspect, make_url, select, text

from chatkit_backend.db import (
    SCHEMA_REVISION,
    Database,
    GroupCommitter,
    SchemaUpgradeError,
    call_blocking,
    metadata,
    redact_password,
)
from chatkit_backend.models import SESSIONS
from tests.conftest import copy_of, new_postgres_database

ROOT = Path(__file__).resolve().parent.parent


def test_every_model_table_is_created_by_the_migrations(make_app, database_url):
    app = make_app(DATABASE_URL=database_url, CHATKIT_AUTO_MIGRATE="true")
    engine = app.extensions["chatkit_db"].engine
    tables = set(inspect(engine).get_table_names())
    assert {table.name for table in metadata.sorted_tables} <= tables
    assert app.extensions["chatkit_db"].schema_revision() == SCHEMA_REVISION


def test_an_empty_sqlite_file_gets_the_schema_at_start(make_app, tmp_path):
    path = tmp_path / "fresh.sqlite3"
    make_app(DATABASE_URL=f"sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION
    engine.dispose()


def test_start_migrates_a_new_sqlite_file_in_a_child_process_and_never_loads_alembic(tmp_path):
    # The worker that migrates must not keep Alembic and Mako (~11 MiB) for its whole life.
    script = (
        "import json, sys\n"
        "from chatkit_backend import create_app\n"
        "app = create_app()\n"
        "print(json.dumps({'revision': app.extensions['chatkit_db'].schema_revision(),\n"
        "                  'loaded': sorted(m for m in ('alembic', 'mako') if m in sys.modules)}))\n"
    )
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "CHATKIT_ENV": "test",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'child.sqlite3'}",
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"revision": SCHEMA_REVISION, "loaded": []}


@pytest.fixture
def postgres_at_unknown_revision() -> Iterator[str]:
    """A new PostgreSQL database whose alembic_version names a revision no migration has, dropped after."""
    with new_postgres_database() as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            connection.execute(text("INSERT INTO alembic_version VALUES ('no_such_revision')"))
        engine.dispose()
        yield url


@pytest.mark.postgres
def test_a_failing_automatic_migration_stops_start_with_its_error_and_without_the_password(
    make_app, postgres_at_unknown_revision
):
    url = make_url(postgres_at_unknown_revision)
    if url.password is None:  # the test server trusts local connections: a made-up password connects too
        url = url.set(password="pw-s3cret/x")
    with pytest.raises(SchemaUpgradeError) as caught:
        make_app(DATABASE_URL=url.render_as_string(hide_password=False), CHATKIT_AUTO_MIGRATE="true")
    message = str(caught.value)
    assert f"upgrading the database schema to {SCHEMA_REVISION} failed" in message
    assert "no_such_revision" in message  # the child's own error
    assert str(url.password) not in message


def test_redact_password_hides_the_password_as_written_and_decoded():
    url = "postgresql+psycopg://app:pw%2Fs3cret@db.example:5432/app"
    output = f"could not parse {url}; password pw/s3cret"
    assert (
        redact_password(output, url) == "could not parse postgresql+psycopg://app:***@db.example:5432/app; password ***"
    )
    assert redact_password("no password here", "sqlite:////tmp/x.sqlite3") == "no password here"


def test_default_database_is_a_sqlite_file_in_the_instance_folder(make_app, base_config):
    base_config.pop("DATABASE_URL")
    app = make_app()
    database = app.extensions["chatkit_db"]
    assert database.is_sqlite
    assert database.url.endswith(str(Path(app.instance_path) / "chatkit.sqlite3"))


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_busy_timeout(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 15000
    database.engine.dispose()


def test_a_new_sqlite_file_switches_to_wal_after_another_connection_finishes_writing(tmp_path):
    # Workers starting together on a new file: one writes (migrates) while another connects. SQLite
    # refuses the switch to WAL at once, without its busy wait, while a write lock is held.
    path = tmp_path / "new.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    commit_later = threading.Timer(0.3, writer.execute, ("COMMIT",))
    commit_later.start()
    database = Database(f"sqlite:///{path}")
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        database.engine.dispose()
        commit_later.join()
        writer.close()


def test_heroku_style_postgres_urls_use_psycopg3():
    database = Database("postgres://user:pw@db.example:5432/app")
    assert database.url.startswith("postgresql+psycopg://")
    assert database.engine.dialect.driver == "psycopg"


def test_db_upgrade_command_creates_the_schema(make_app, database_url):
    app = make_app(DATABASE_URL=database_url, CHATKIT_AUTO_MIGRATE="false")
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database schema at head" in result.output
    assert app.extensions["chatkit_db"].schema_revision() == SCHEMA_REVISION


def test_rows_round_trip_through_the_engine_with_column_defaults(make_app, database_url):
    from datetime import UTC, datetime, timedelta

    app = make_app(DATABASE_URL=database_url, CHATKIT_AUTO_MIGRATE="true")
    database = app.extensions["chatkit_db"]
    now = datetime.now(UTC)
    with database.engine.begin() as connection:
        connection.execute(
            insert(SESSIONS).values(
                id="cksess_1",
                user_id="u1",
                secret_sha256="0" * 64,
                workflow_id="wf_1",
                created_at=now,
                expires_at=now + timedelta(minutes=10),
            )
        )
    with database.engine.connect() as connection:
        stored = connection.execute(select(SESSIONS).where(SESSIONS.c.id == "cksess_1")).one()
    assert stored.user_id == "u1"
    assert stored.status == "active"  # the column's default


def test_group_committer_shares_one_commit_and_hands_errors_to_every_caller():
    batches: list[list[int]] = []
    holding: list[int] = []
    gate = threading.Event()

    def commit(items: list[int]) -> int:
        holding[:] = items
        gate.wait(5)
        if -1 in items:
            raise ValueError("bad batch")
        batches.append(items)
        return len(items)

    committer = GroupCommitter("test-committer", commit, idle_seconds=0.2, poll_seconds=0.05)
    results: dict[int, object] = {}

    def submit(value: int) -> None:
        try:
            results[value] = committer.submit([value])
        except ValueError as error:
            results[value] = error

    threads = [threading.Thread(target=submit, args=(value,)) for value in range(8)]
    for thread in threads:
        thread.start()
    # Until the committer holds a batch and every other item waits in the queue.
    deadline = time.monotonic() + 5
    while len(holding) + committer._queue.qsize() < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert holding
    gate.set()
    for thread in threads:
        thread.join(5)
    assert sorted(item for batch in batches for item in batch) == list(range(8))
    assert len(batches) < 8  # the waiting ones went in together
    assert all(isinstance(result, int) for result in results.values())

    with pytest.raises(ValueError, match="bad batch"):
        committer.submit([-1])

    deadline = time.monotonic() + 5
    while committer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert committer._thread is None  # idle: the thread ended
    assert committer.submit([42]) == 1  # and the next submit starts another


def test_group_committer_bounds_the_wait():
    release = threading.Event()
    committer = GroupCommitter("slow-committer", lambda items: release.wait(5), wait_seconds=0.1)
    with pytest.raises(TimeoutError):
        committer.submit([1])
    release.set()


GEVENT_BLOCKING_PROBE = """
from gevent import monkey
monkey.patch_all()
import gevent, sys
from chatkit_backend.db import call_blocking
blocking_sleep = monkey.get_original("time", "sleep")  # blocks the OS thread, as SQLite's busy wait does
ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(100)])
gevent.sleep(0)
{call}
print(len(ticks))
ticker.kill()
"""


@pytest.mark.parametrize(
    ("call", "other_greenlets_run"),
    [("call_blocking(blocking_sleep, 0.3)", True), ("blocking_sleep(0.3)", False)],
)
def test_call_blocking_lets_other_greenlets_run_under_gevent(call, other_greenlets_run):
    # The plain call is the control: it stalls every greenlet of the process, which is what the
    # group committer's commits (SQLite) must not do under gunicorn's gevent workers.
    out = subprocess.run(
        [sys.executable, "-c", GEVENT_BLOCKING_PROBE.format(call=call)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    ticks = int(out.split()[-1])
    assert (ticks >= 10) is other_greenlets_run, ticks


def test_call_blocking_is_a_plain_call_without_gevent():
    assert call_blocking(threading.get_ident) == threading.get_ident()


WRITE_UNDER_LOCK_PROBE = """
from gevent import monkey
monkey.patch_all()
import gevent, json, sqlite3, sys
from pathlib import Path
from sqlalchemy import update
from chatkit_backend.analytics.spool import Spool
from chatkit_backend.analytics.store import EventStore
from chatkit_backend.db import Database
from chatkit_backend.models import SESSIONS
from chatkit_backend.sessions.registry import SessionRegistry
path, spool_path = sys.argv[1], Path(sys.argv[2])
database = Database(f"sqlite:///{{path}}")
database.ping()  # the pooled connection exists before the lock is taken
registry = SessionRegistry(database)
store = EventStore(database, Spool(spool_path))
row = {{"event_key": "spooled-1", "kind": "message", "received_at": "2026-01-01T00:00:00+00:00"}}
spool_path.write_text(json.dumps(["events", row]) + "\\n")
def plain_update():
    with database.engine.begin() as connection:
        connection.execute(update(SESSIONS).where(SESSIONS.c.id == "s-old").values(status="cancelled"))
# Another writer (another worker process) holds SQLite's write lock for 0.3 s, on an OS thread of its own.
holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
holder.execute("BEGIN IMMEDIATE")
blocking_sleep = monkey.get_original("time", "sleep")
gevent.get_hub().threadpool.spawn(lambda: (blocking_sleep(0.3), holder.execute("COMMIT")))
ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(100)])
gevent.sleep(0)
{call}
print(len(ticks))
ticker.kill()
"""


@pytest.mark.parametrize(
    ("call", "other_greenlets_run"),
    [
        ('registry.mark_cancelled("s-old", replaced_by="s-new")', True),  # what a refresh writes
        ("assert store.replay_spool() == 1 and not store.spool.rejected_path.exists()", True),
        ("plain_update()", False),
    ],
)
def test_refresh_and_spool_replay_writes_let_other_greenlets_run_while_sqlite_waits(
    call, other_greenlets_run, migrated_sqlite, tmp_path
):
    # Under gevent a write that waits for SQLite's lock on the hub stalls every request of the
    # worker (the plain update is the control); every write goes through Database.write instead.
    database = copy_of(migrated_sqlite, tmp_path / "probe.sqlite3").removeprefix("sqlite:///")
    out = subprocess.run(
        [sys.executable, "-c", WRITE_UNDER_LOCK_PROBE.format(call=call), database, str(tmp_path / "spool.jsonl")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    ).stdout
    ticks = int(out.split()[-1])
    assert (ticks >= 10) is other_greenlets_run, ticks
