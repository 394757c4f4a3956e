"""Session routes: route → validation → identity → lifecycle/upstream call → response."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from chatkit_backend.errors import ApiError, get_json_body
from chatkit_backend.http_security import same_origin_only
from chatkit_backend.identity import current_user
from chatkit_backend.rate_limits import (
    client_address,
    limiter,
    session_limit,
    session_limit_per_address,
    threads_limit,
    threads_limit_per_address,
    user_key,
)
from chatkit_backend.sessions import lifecycle, validation
from chatkit_backend.upstream import ChatKitSession, UpstreamNotFound, get_upstream

bp = Blueprint("sessions", __name__, url_prefix="/api/chatkit")

# Create and refresh share one budget per user and one per address (a dropped cookie escapes neither).
_per_user = limiter.shared_limit(session_limit, scope="chatkit-session-user", key_func=user_key)
_per_address = limiter.shared_limit(session_limit_per_address, scope="chatkit-session-address", key_func=client_address)
_threads = limiter.limit(threads_limit, key_func=user_key)
# Without a cookie each request is a new user: the address budget bounds the upstream calls one client makes.
_threads_per_address = limiter.shared_limit(
    threads_limit_per_address, scope="chatkit-threads-address", key_func=client_address
)


@bp.after_request
def _no_store(response: Response) -> Response:
    # Client secrets and a user's threads: no browser or shared cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


def _secret_answer(session: ChatKitSession) -> dict[str, object]:
    return {"client_secret": session.client_secret, "expires_at": session.expires_at}


def _allowed_state_variables() -> tuple[str, ...]:
    return current_app.config["SETTINGS"].allowed_state_variables


@bp.post("/session")
@bp.post("/session/")
@same_origin_only
@_per_user
@_per_address
def create_session():
    """A client secret for a new session of the current user."""
    variables = validation.state_variables(get_json_body(), _allowed_state_variables())
    session = lifecycle.issue_session(current_user(), variables)
    return _secret_answer(session)


@bp.post("/refresh")
@same_origin_only
@_per_user
@_per_address
def refresh_session():
    """A new client secret for the current user, replacing (and cancelling) the one the browser holds."""
    body = get_json_body()
    old_secret = validation.refresh_secret(body, request.args)
    variables = validation.state_variables(body, _allowed_state_variables())
    session = lifecycle.refresh_session(current_user(), old_secret, variables)
    return _secret_answer(session)


@bp.post("/session/cancel")
@same_origin_only
@_per_user
def cancel_sessions():
    """Logout: cancel the current user's active sessions."""
    return {"cancelled": lifecycle.cancel_user_sessions(current_user())}


@bp.get("/threads")
@_threads
@_threads_per_address
def list_threads():
    """The current user's threads, one page at a time."""
    page_options = validation.thread_page(request.args)
    page = get_upstream().list_threads(current_user(), **page_options)
    return {
        "data": [{"id": t.id, "title": t.title, "created_at": t.created_at, "status": t.status} for t in page.data],
        "first_id": page.first_id,
        "last_id": page.last_id,
        "has_more": page.has_more,
    }


@bp.delete("/threads/<thread_id>")
@same_origin_only
@_threads
@_threads_per_address
def delete_thread(thread_id: str):
    """Delete one of the current user's threads; another user's thread is 404, as if it did not exist."""
    thread_id = validation.thread_id(thread_id)
    user = current_user()
    upstream = get_upstream()
    try:
        thread = upstream.get_thread(thread_id)
    except UpstreamNotFound:
        thread = None
    if thread is None or thread.user != user:
        raise ApiError("not_found", "No such thread.", 404)
    upstream.delete_thread(thread_id)
    return {"id": thread_id, "deleted": True}
