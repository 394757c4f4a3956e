"""Who the current user is. The ChatKit `user` always comes from here, never from a request body.

Filled in by the session bootstrap work (issue 3): anonymous signed cookie, JWT, trusted header.
"""

from __future__ import annotations


def peek_user() -> str | None:
    """The current request's user id if it carries a valid identity; never creates one."""
    return None
