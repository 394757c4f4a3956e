"""Helpers shared by the analytics and admin tests: an app on a given database, row counts, bounded polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Table, select, text


class AnalyticsApps:
    """Builds apps on one database with their spool in `tmp_path`; `close()` disposes their engines."""

    def __init__(self, make_app: Callable[..., Flask], database_url: str, tmp_path: Path) -> None:
        self.make_app, self.database_url, self.tmp_path = make_app, database_url, tmp_path
        self.apps: list[Flask] = []

    def __call__(self, **overrides: str) -> Flask:
        config = {"DATABASE_URL": self.database_url, "CHATKIT_ANALYTICS_SPOOL_PATH": str(self.tmp_path / "spool.jsonl")}
        app = self.make_app({**config, **overrides})
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.extensions["chatkit_db"].engine.dispose()


@pytest.fixture
def analytics_app(make_app, database_url, tmp_path):
    """Builds apps on the test's database (import this fixture into a test module)."""
    apps = AnalyticsApps(make_app, database_url, tmp_path)
    yield apps
    apps.close()


def rows(app: Flask, table: Table) -> list[dict]:
    """Every row of `table` as dicts, JSON columns decoded."""
    with app.extensions["chatkit_db"].engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(table).order_by(*table.primary_key))]


def count_rows(app: Flask, table: str, where: str = "1=1") -> int:
    with app.extensions["chatkit_db"].engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()  # noqa: S608


def column_values(app: Flask, table: str, column: str, order: str = "id") -> list:
    with app.extensions["chatkit_db"].engine.connect() as connection:
        return list(connection.execute(text(f"SELECT {column} FROM {table} ORDER BY {order}")).scalars())  # noqa: S608


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
