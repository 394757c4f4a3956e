"""Analytics events and frontend error reports forwarded by the page."""

from chatkit_backend.analytics.routes import bp

__all__ = ["bp"]
