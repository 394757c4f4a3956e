"""The browser side: the example page at /example and cross-origin loading of /static/chatkit-backend.js."""

from flask import Flask

from chatkit_backend.frontend.routes import bp


def init_app(app: Flask) -> None:
    """Register the example page and the static helper's cross-origin headers."""
    app.register_blueprint(bp)
