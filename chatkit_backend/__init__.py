"""A Flask backend for OpenAI ChatKit: sessions, analytics and health."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask

from chatkit_backend import (
    admin,
    analytics,
    cli,
    db,
    errors,
    frontend,
    health,
    http_security,
    identity,
    metrics,
    openapi,
    rate_limits,
    request_log,
    selfhosted,
    sessions,
    upstream,
)
from chatkit_backend.config import Settings


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the application. `config` (environment-variable names to values) overrides the environment."""
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

    # Infrastructure, then the areas: each creates what it needs in app.extensions and registers its blueprint.
    request_log.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    http_security.init_app(app)
    db.init_app(app)
    rate_limits.init_app(app)
    upstream.init_app(app)
    identity.init_app(app)
    cli.init_app(app)
    health.init_app(app)
    openapi.init_app(app)
    sessions.init_app(app)
    selfhosted.init_app(app)
    analytics.init_app(app)
    frontend.init_app(app)
    admin.init_app(app)
    return app
