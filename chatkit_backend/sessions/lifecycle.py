"""What the session routes do: issue, refresh and cancel ChatKit sessions, keeping the registry in step."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from chatkit_backend.db import get_db
from chatkit_backend.sessions.registry import SessionRegistry
from chatkit_backend.upstream import ChatKitSession, StateValue, UpstreamError, UpstreamNotFound, get_upstream

log = logging.getLogger(__name__)


def issue_session(user: str, state_variables: Mapping[str, StateValue] | None = None) -> ChatKitSession:
    """Create a ChatKit session for `user` and record it."""
    session = get_upstream().create_session(user, state_variables)
    try:
        SessionRegistry(get_db()).record(session, user)
    except Exception:
        # Unrecorded, logout could never cancel it: cancel it now, and answer the error.
        with contextlib.suppress(UpstreamError):
            _cancel_upstream(session.id)
        raise
    return session


def refresh_session(
    user: str, old_secret: str, state_variables: Mapping[str, StateValue] | None = None
) -> ChatKitSession:
    """A new session for `user`; the old one is cancelled only if it is known and belongs to `user`."""
    registry = SessionRegistry(get_db())
    session = issue_session(user, state_variables)
    old = registry.find_by_secret(old_secret)
    if old is None or old.user_id != user or old.status != "active":
        return session  # an unknown or foreign secret cancels nothing
    try:
        _cancel_upstream(old.id)
    except UpstreamError as exc:
        # The user has a working new session; the old one simply lives until it expires.
        log.warning("could not cancel a replaced session", extra={"session_id": old.id, "code": exc.code})
        return session
    registry.mark_cancelled(old.id, replaced_by=session.id)
    return session


def cancel_user_sessions(user: str) -> int:
    """Cancel every active session of `user` upstream and in the registry; return how many."""
    registry = SessionRegistry(get_db())
    cancelled = 0
    for issued in registry.active_for(user):
        _cancel_upstream(issued.id)
        registry.mark_cancelled(issued.id)
        cancelled += 1
    return cancelled


def _cancel_upstream(session_id: str) -> None:
    with contextlib.suppress(UpstreamNotFound):  # already gone upstream: as good as cancelled
        get_upstream().cancel_session(session_id)
