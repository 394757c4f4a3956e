"""SQL storage: one SQLAlchemy engine per process, SQLite by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The newest Alembic revision. Start-up compares it with the database's and imports Alembic
# (about 0.4 s) only when they differ; a test keeps it equal to the migrations' head.
SCHEMA_REVISION = "0002_analytics"
EXTENSION_KEY = "chatkit_db"

# Stable constraint names so that Alembic migrations read the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table the service keeps."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """The process's engine and session factory, stored in `app.extensions['chatkit_db']`."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions.begin() as session:
            yield session

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
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})
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
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def get_db() -> Database:
    """The current app's Database."""
    return current_app.extensions[EXTENSION_KEY]


def upgrade_schema(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` to `revision` with Alembic."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


def _auto_upgrade(database: Database, lock_dir: Path) -> None:
    if database.schema_revision() == SCHEMA_REVISION:
        return
    # Several gunicorn workers may start at once on one database: one migrates, the rest wait.
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if database.schema_revision() != SCHEMA_REVISION:
            log.info("upgrading the database schema to %s", SCHEMA_REVISION)
            upgrade_schema(database.url)


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
        _auto_upgrade(database, Path(app.instance_path))
    app.cli.add_command(db_cli)


db_cli = AppGroup("db", help="Database schema commands.")


@db_cli.command("upgrade", help="Create the schema or upgrade it to the newest revision.")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    upgrade_schema(get_db().url, revision)
    click.echo(f"database schema at {revision}")
