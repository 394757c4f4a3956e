"""The schema: Alembic's head, the constant start-up compares with, and the models agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import chatkit_backend.models  # noqa: F401 - registers every table
from chatkit_backend.analytics.store import write_records
from chatkit_backend.db import MIGRATIONS_DIR, SCHEMA_REVISION, metadata, normalise_url, upgrade_schema
from tests.conftest import new_postgres_database


def test_schema_revision_is_alembic_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_REVISION]


def test_migrations_match_models(database_url, tmp_path):
    url = normalise_url(database_url)
    upgrade_schema(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert diff == []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A new, empty database of each kind (the migrations under test create every table)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    with new_postgres_database() as url:
        yield url


def test_upgrading_to_event_id_scopes_keeps_existing_rows_and_scopes_new_ones(empty_database_url):
    url = normalise_url(empty_database_url)
    upgrade_schema(url, "0003_chatkit_store")  # the revision before event-id scopes
    engine = create_engine(url)
    now = datetime.now(UTC)
    common = {"received_at": now, "user_id": "alice", "client_address": None}
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO analytics_events (event_key, kind, received_at, user_id) VALUES (:k, 'message', :t, :u)"),
            [{"k": f"message:old-{i}", "t": now, "u": "alice"} for i in range(3)],
        )
        connection.execute(
            text(
                "INSERT INTO analytics_error_reports (event_key, fingerprint, message, level, received_at) "
                "VALUES ('error:old', 'f', 'boom', 'error', :t)"
            ),
            {"t": now},
        )
    engine.dispose()
    upgrade_schema(url)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            kept = connection.execute(text("SELECT event_key, scope FROM analytics_events ORDER BY id")).all()
            assert [tuple(row) for row in kept] == [(f"message:old-{i}", "") for i in range(3)]
            assert connection.execute(text("SELECT scope FROM analytics_error_reports")).scalar_one() == ""
            # The same client id from another sender is another row; from the same sender, a duplicate.
            rows = [
                {**common, "event_key": "message:old-0", "kind": "message", "scope": "b" * 32},
                {**common, "event_key": "message:old-0", "kind": "message", "scope": "b" * 32},
                {**common, "event_key": "message:old-0", "kind": "message", "scope": ""},
            ]
            write_records(connection, [("events", row) for row in rows])
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM analytics_events")).scalar_one() == 4
    finally:
        engine.dispose()
