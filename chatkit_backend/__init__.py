"""A Flask backend for OpenAI ChatKit: sessions, analytics and health."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the application. `config` (environment-variable names to values) overrides the environment."""
    # Imported here, not at the top: gunicorn's master imports this package for its worker class
    # (chatkit_backend.gunicorn_worker) and must stay light; workers import the app after gevent
    # has patched the standard library.
    from flask import Flask

    from chatkit_backend import (
        admin,
        cli,
        db,
        errors,
        health,
        http_security,
        identity,
        metrics,
        openapi,
        rate_limits,
        request_log,
        selfhosted,
        upstream,
    )
    from chatkit_backend.analytics import bp as analytics_bp
    from chatkit_backend.config import Settings
    from chatkit_backend.frontend import bp as frontend_bp
    from chatkit_backend.sessions import bp as sessions_bp

    settings = Settings.from_env({**os.environ, **(config or {})})
    request_log.configure_logging(settings.log_level)

    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.secret_key_generated:
        logging.getLogger(__name__).warning(
            "SECRET_KEY is not set: using a random per-process key (development only); "
            "identity cookies will not survive a restart or work across workers"
        )

    request_log.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    http_security.init_app(app)
    db.init_app(app)
    rate_limits.init_app(app)
    upstream.init_app(app)
    identity.init_app(app)
    cli.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(sessions_bp)
    selfhosted.init_app(app)
    app.register_blueprint(analytics_bp)
    app.register_blueprint(frontend_bp)
    admin.init_app(app)
    return app
