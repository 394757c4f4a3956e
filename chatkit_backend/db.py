"""SQL storage: one SQLAlchemy engine per process, SQLite by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.exc import DataError, IntegrityError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The newest Alembic revision. Start-up compares it with the database's and runs Alembic (in a
# child process) only when they differ; a test keeps it equal to the migrations' head.
SCHEMA_REVISION = "0006_conversations"
EXTENSION_KEY = "chatkit_db"
# SQLite waits this long for another connection's write lock (busy timeout, and the switch to WAL).
SQLITE_BUSY_SECONDS = 15

# Stable constraint names so that Alembic migrations read the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every table the service keeps (chatkit_backend.models imports them all). Core tables, no ORM:
# the queries are Core statements, and sqlalchemy.orm would slow every start (docs/BENCHMARKS.md).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

T = TypeVar("T")
R = TypeVar("R")


class Database:
    """The process's engine, stored in `app.extensions['chatkit_db']`."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self._committers: dict[str, GroupCommitter[Any]] = {}
        self._committers_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def committer(self, name: str, commit: Callable[[list[T]], Any], **options: Any) -> GroupCommitter[T]:
        """This database's GroupCommitter called `name`, created with `commit` and `options` on first use."""
        committer = self._committers.get(name)
        if committer is None:
            with self._committers_lock:
                committer = self._committers.get(name)
                if committer is None:
                    committer = self._committers[name] = GroupCommitter(name, commit, **options)
        return committer

    def write(self, work: Callable[[Connection], R]) -> R:
        """`work(connection)` in one transaction, committed on return: every write of the service goes through here.

        SQLite may block inside C (waiting for another process's write lock, syncing its file), which
        under gevent would stall every request of the worker, so there the transaction runs through
        `call_blocking`; psycopg already waits for PostgreSQL cooperatively.
        """

        def transaction() -> R:
            with self.engine.begin() as connection:
                return work(connection)

        return call_blocking(transaction) if self.is_sqlite else transaction()

    def schema_revision(self) -> str | None:
        """The database's Alembic revision, or None for an empty database."""
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def ping(self) -> None:
        """Run a trivial query; raises when the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


class _Pending:
    __slots__ = ("done", "error", "items", "result")

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommitter(Generic[T]):
    """Many threads' writes, one transaction per batch: a queue and one committer thread per process.

    `submit(items)` queues the items and waits until the committer has run `commit(batch)` on
    everything waiting at that moment (up to `max_items`); it returns what `commit` returned, or
    raises what it raised or `TimeoutError` after `wait_seconds`. When a batch of several callers
    fails with an error one row can cause (`isolate`: the database refusing a value), each
    caller's items are committed again on their own, so only the caller with the bad row fails;
    any other error fails every caller of the batch. So a caller that gets a return has its rows
    committed, and concurrent writers share one commit instead of queueing on the database's
    write lock and the connection pool.

    The thread starts lazily at the first `submit` in each process (never in gunicorn's master,
    which forks before any request; a thread inherited through fork() does not run in the child),
    is a daemon (never keeps pytest or a stopping worker from exiting) and ends after
    `idle_seconds` with nothing to do. Hooks, all run on the committer thread: `on_start()` when it
    starts, `after_batch(result)` after the callers of a successful batch are woken, and
    `when_idle()` every `poll_seconds` without work, returning True while it still has background
    work (the thread then stays).
    """

    def __init__(
        self,
        name: str,
        commit: Callable[[list[T]], Any],
        *,
        max_items: int = 5000,
        wait_seconds: float = 25.0,
        idle_seconds: float = 2.0,
        poll_seconds: float = 0.5,
        on_start: Callable[[], Any] | None = None,
        after_batch: Callable[[Any], Any] | None = None,
        when_idle: Callable[[], bool] | None = None,
        isolate: tuple[type[BaseException], ...] = (DataError, IntegrityError),
    ) -> None:
        self.name = name
        self._isolate = isolate
        self._commit = commit
        self.max_items = max_items
        self.wait_seconds = wait_seconds
        self.idle_seconds = idle_seconds
        self.poll_seconds = poll_seconds
        self._on_start = on_start
        self._after_batch = after_batch
        self._when_idle = when_idle
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0

    def submit(self, items: Sequence[T]) -> Any:
        """Commit `items` with whatever else is waiting; returns `commit`'s result once committed."""
        pending = _Pending(items)
        self._queue.put(pending)
        self.start()
        if not pending.done.wait(self.wait_seconds):
            raise TimeoutError(f"{self.name}: no commit within {self.wait_seconds:.0f} s")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def start(self) -> None:
        """Start the committer thread if it is not running in this process."""
        if self._thread is not None and self._thread_pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._thread_pid == os.getpid():
                return
            thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread, self._thread_pid = thread, os.getpid()
            thread.start()

    def _retire(self) -> bool:
        """End the thread when idle; False when work arrived meanwhile (`submit` queues, then checks)."""
        with self._lock:
            self._thread = None
            if self._queue.empty():
                return True
            self._thread = threading.current_thread()
            return False

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        idle_since = time.monotonic()
        while True:
            try:
                first = self._queue.get(timeout=self.poll_seconds)
            except queue.Empty:
                busy = self._when_idle() if self._when_idle is not None else False
                if not busy and time.monotonic() - idle_since > self.idle_seconds and self._retire():
                    return
                continue
            group = [first]
            count = len(first.items)
            while count < self.max_items:
                try:
                    pending = self._queue.get_nowait()
                except queue.Empty:
                    break
                group.append(pending)
                count += len(pending.items)
            result, error = self._try_commit([item for pending in group for item in pending.items])
            if error is not None and len(group) > 1 and isinstance(error, self._isolate):
                result, error = self._commit_each(group)
            else:
                for pending in group:
                    pending.result, pending.error = result, error
                    pending.done.set()
            if error is None and self._after_batch is not None:
                self._after_batch(result)
            idle_since = time.monotonic()

    def _try_commit(self, batch: list[T]) -> tuple[Any, BaseException | None]:
        try:
            return self._commit(batch), None
        except Exception as exc:  # noqa: BLE001 - handed to the batch's callers
            return None, exc

    def _commit_each(self, group: list[_Pending]) -> tuple[Any, BaseException | None]:
        """Commit each caller's items in a transaction of its own; a success's (result, None), else the last error."""
        results = []
        for pending in group:
            pending.result, pending.error = self._try_commit(list(pending.items))
            pending.done.set()
            if pending.error is None:
                results.append(pending.result)
        return (results[-1], None) if results else (None, group[-1].error)


def dialect_insert(connection: Connection, table: Any) -> Any:
    """The connection's dialect's INSERT for `table`, the one with `on_conflict_do_*` (SQLite, PostgreSQL).

    Imported by name: importing sqlalchemy.dialects.postgresql at start-up costs measurable time on
    SQLite, where it is never used.
    """
    name = "postgresql" if connection.dialect.name == "postgresql" else "sqlite"
    return import_module(f"sqlalchemy.dialects.{name}").insert(table)


def call_blocking(function: Callable[..., R], *args: Any) -> R:
    """`function(*args)`, run where a call that blocks inside C cannot stall the whole process.

    Under gunicorn's gevent workers every request of a process shares one OS thread, and a call
    that blocks without yielding to gevent (SQLite waiting for another process's write lock or
    syncing its file; an fsync) stops them all. There the call runs in gevent's pool of native
    threads: the calling greenlet waits, the others go on. Elsewhere it is a plain call.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent

        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def normalise_url(url: str) -> str:
    """Accept the URLs hosting platforms hand out (`postgres://`) and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    """Create the engine with the pragmas and pool settings each backend needs."""
    if url.startswith("sqlite"):
        # check_same_thread=False: pooled connections move between gunicorn's threads (one at a
        # time). Writes go through one committer thread per process (GroupCommitter), so the pool
        # serves reads; sized to gunicorn's 64 threads so that no reader waits for a connection.
        in_memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
        pool = {} if in_memory else {"pool_size": 8, "max_overflow": 56}
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A database that stops answering must fail fast (analytics then spools), not hold a request.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=5,
        connect_args={"connect_timeout": 3},
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    _use_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (kept by the file once set), waiting out a writer.

    The switch needs the database to itself, and while another connection holds a write lock SQLite
    answers "database is locked" at once, without its busy wait: several gunicorn workers starting
    on a new file, one of them migrating, hit that. So wait here, as long as the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def get_db() -> Database:
    """The current app's Database."""
    return current_app.extensions[EXTENSION_KEY]


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` to `revision` with Alembic, in this process (`flask db upgrade`)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


class SchemaUpgradeError(RuntimeError):
    """The automatic schema upgrade at start failed; the message carries the migration's error output."""


# The child that migrates: the URL comes through its environment (never argv: `ps` shows argv).
_UPGRADE_CHILD = "import os; from chatkit_backend.db import upgrade_schema; upgrade_schema(os.environ['DATABASE_URL'])"


def upgrade_schema_in_child(url: str) -> None:
    """Run `upgrade_schema(url)` in a child Python: Alembic and Mako never load (nor stay in memory) here."""
    root = str(MIGRATIONS_DIR.parent)
    env = {**os.environ, "DATABASE_URL": url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    command = [sys.executable, "-c", _UPGRADE_CHILD]  # fixed code; only the environment varies
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        output = redact_password(result.stderr.strip() or result.stdout.strip(), url)
        raise SchemaUpgradeError(
            f"upgrading the database schema to {SCHEMA_REVISION} failed (exit status {result.returncode}):\n"
            + output[-4000:]
        )


def redact_password(text: str, url: str) -> str:
    """`text` with the password of `url` (as written in it and decoded) replaced by ***."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    for secret in {password, unquote(password or "")}:
        if secret:
            text = text.replace(secret, "***")
    return text


def _auto_upgrade(database: Database, lock_dir: Path) -> None:
    if database.schema_revision() == SCHEMA_REVISION:
        return
    # Several gunicorn workers may start at once on one database: one migrates, the rest wait.
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if database.schema_revision() != SCHEMA_REVISION:
            log.info("upgrading the database schema to %s", SCHEMA_REVISION)
            upgrade_schema_in_child(database.url)
            found = database.schema_revision()
            if found != SCHEMA_REVISION:  # e.g. an in-memory database: the child migrated its own
                raise SchemaUpgradeError(f"the database schema is at {found}, not {SCHEMA_REVISION}, after upgrading")


def init_app(app: Flask) -> None:
    """Create the engine; on SQLite (or with CHATKIT_AUTO_MIGRATE=true) bring the schema up to date."""
    settings = app.config["SETTINGS"]
    url = settings.database_url
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'chatkit.sqlite3'}"
    database = Database(url)
    app.extensions[EXTENSION_KEY] = database
    auto = settings.auto_migrate if settings.auto_migrate is not None else database.is_sqlite
    if auto:
        try:
            _auto_upgrade(database, Path(app.instance_path))
        except Exception:
            database.engine.dispose()  # the app is never returned: close its connections now
            raise
    app.cli.add_command(db_cli)


db_cli = AppGroup("db", help="Database schema commands.")


@db_cli.command("upgrade", help="Create the schema or upgrade it to the newest revision.")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    upgrade_schema(get_db().url, revision)
    click.echo(f"database schema at {revision}")
