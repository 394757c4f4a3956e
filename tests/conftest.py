"""Shared fixtures: an app factory with test settings, real SQLite always, PostgreSQL and Redis where they run.

PostgreSQL and Redis tests skip with a reason on a machine without them, and fail instead in CI
(CI=true), where `.ci/run` guarantees both.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

import chatkit_backend.models  # noqa: F401 - registers every table on metadata
from chatkit_backend import create_app
from chatkit_backend.db import metadata, normalise_url, upgrade_schema
from tests.chatkit_standin import ChatKitStandin

# Fixtures of the analytics and admin tests (`analytics_app`) and of the self-hosted ChatKit tests.
pytest_plugins = ["tests.analytics_support", "tests.selfhosted_support"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Variables a developer's shell may carry that would change what the tests see.
_ENV_PREFIXES = ("CHATKIT_", "OPENAI_")
_ENV_NAMES = (
    "SECRET_KEY",
    "DATABASE_URL",
    "RATELIMIT_STORAGE_URI",
    "CORS_ORIGINS",
    "TRUSTED_PROXY_HOPS",
    "MAX_CONTENT_LENGTH",
    "LOG_LEVEL",
    "RATELIMIT_KEY_PREFIX",
)


def service_missing(what: str, reason: str) -> None:
    """Skip locally, fail in CI: CI promises PostgreSQL and Redis."""
    message = f"{what} is not reachable ({reason}); set TEST_DATABASE_URL / TEST_REDIS_URL or start it"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def port_open(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name)


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server, dropped on exit."""
    if not port_open(PG_URL, 5432):
        service_missing("PostgreSQL", PG_URL)
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"chatkit_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield normalise_url(PG_URL).rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped at the end."""
    with new_postgres_database() as url:
        upgrade_schema(url)
        yield url


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        if names:
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each storage test runs twice: on a new SQLite file and on an emptied PostgreSQL database."""
    if request.param == "sqlite":
        return copy_of(request.getfixturevalue("migrated_sqlite"), tmp_path / "test.sqlite3")
    url = request.getfixturevalue("postgres_server_url")
    _truncate_all(url)
    return url


@pytest.fixture
def redis_url() -> str:
    """The test Redis; each test gets its own key prefix through `make_app`."""
    if not port_open(REDIS_URL, 6379):
        service_missing("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file at the schema's head, copied for each test that needs a database.

    Migrating at start runs Alembic in a child Python (about a second); tests of that start use
    their own new files.
    """
    path = tmp_path_factory.mktemp("migrated") / "template.sqlite3"
    upgrade_schema(f"sqlite:///{path}")
    return path


def copy_of(template: Path, target: Path) -> str:
    """A URL of a copy of the SQLite database `template` at `target` (SQLite's backup: WAL included)."""
    source, copy = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return f"sqlite:///{target}"


@pytest.fixture
def base_config(tmp_path, migrated_sqlite: Path) -> dict[str, str]:
    """Settings every test app starts from; tests override by passing their own."""
    return {
        "CHATKIT_ENV": "test",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": copy_of(migrated_sqlite, tmp_path / "app.sqlite3"),
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def make_app(base_config: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Build an app from `base_config` plus overrides (environment-variable names to values).

    Each app's database connections and upstream HTTP pool are closed when the test ends.
    """
    apps: list[Flask] = []

    def factory(overrides: dict[str, str] | None = None, **kwargs: str) -> Flask:
        # A key prefix per app keeps rate-limit counters in a shared Redis apart.
        config = {"RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}", **base_config, **(overrides or {}), **kwargs}
        app = create_app(config)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        chatkit = app.extensions.get("chatkit_selfhosted")
        if chatkit is not None:
            chatkit.close()
        app.extensions["chatkit_db"].engine.dispose()
        upstream = app.extensions.get("chatkit_upstream")
        if upstream is not None:
            upstream.http.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chatkit_standin() -> Iterator[ChatKitStandin]:
    """A loopback ChatKit API (tests/chatkit_standin.py): records requests, plays injected faults."""
    with ChatKitStandin() as standin:
        yield standin


@pytest.fixture
def chatkit_config(chatkit_standin: ChatKitStandin) -> dict[str, str]:
    """Settings pointing the app at the stand-in; only CHATKIT_API_BASE differs from a real deployment."""
    return {
        "CHATKIT_API_BASE": chatkit_standin.url,
        "OPENAI_API_KEY": chatkit_standin.api_key,
        "CHATKIT_WORKFLOW_ID": chatkit_standin.workflow_id,
        "CHATKIT_CONNECT_TIMEOUT": "1",
        "CHATKIT_READ_TIMEOUT": "2",
        "CHATKIT_RETRY_BUDGET_SECONDS": "2",
    }
