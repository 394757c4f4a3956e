"""Admin API and dashboard over the analytics data. Exists only when CHATKIT_ADMIN_TOKEN is set."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the admin routes if an admin token is configured; otherwise they do not exist (404)."""
    if not app.config["SETTINGS"].admin_token:
        return
    from chatkit_backend.admin.routes import api_bp, pages_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
