"""ChatKit session bootstrap: create, refresh and cancel sessions for the current user."""

from flask import Flask

from chatkit_backend.sessions.routes import bp


def init_app(app: Flask) -> None:
    """Register the session routes (the ChatKit client and the database are infrastructure's)."""
    app.register_blueprint(bp)
