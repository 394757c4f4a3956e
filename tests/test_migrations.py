"""The schema: Alembic's head, the constant start-up compares with, and the models agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

import chatkit_backend.models  # noqa: F401 - registers every table
from chatkit_backend.db import MIGRATIONS_DIR, SCHEMA_REVISION, metadata, normalise_url, upgrade_schema


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
