"""The browser side: the example page at /example and cross-origin loading of /static/chatkit-backend.js."""

from chatkit_backend.frontend.routes import bp

__all__ = ["bp"]
