"""ChatKit session bootstrap: create, refresh and cancel sessions for the current user."""

from chatkit_backend.sessions.routes import bp

__all__ = ["bp"]
