"""Analytics events and frontend error reports forwarded by the page."""

from flask import Flask

from chatkit_backend.analytics import ingest
from chatkit_backend.analytics.cli import analytics_cli
from chatkit_backend.analytics.routes import bp


def init_app(app: Flask) -> None:
    """Create the event store, register the ingest routes and the `flask analytics` commands."""
    ingest.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(analytics_cli)
