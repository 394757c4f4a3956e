"""Rate limiting with flask-limiter: memory for one process, Redis for several workers or machines."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded

from chatkit_backend import rate_limit_storage
from chatkit_backend.errors import ApiError, error_response
from chatkit_backend.identity import current_user, peek_user

log = logging.getLogger(__name__)


def client_address() -> str:
    """The client's address as ProxyFix sees it (forwarding headers only count from trusted hops)."""
    return request.remote_addr or "unknown"


def user_key() -> str:
    """The current user; in anonymous mode a first visit gets its identity here, before the check.

    Without that, every first visit from one address (an office) would share one per-user budget.
    A visitor who drops the cookie still meets the per-address limit. In the other modes a request
    without a valid identity is keyed by its address (the view answers it 401); a key function
    must never fail the request.
    """
    user = peek_user()
    if user is None and current_app.config["SETTINGS"].identity_mode == "anonymous":
        user = current_user()
    return f"user:{user}" if user else f"address:{client_address()}"


def session_limit() -> str:
    """CHATKIT_SESSION_RATE_LIMIT, per user, shared by session create and refresh."""
    return current_app.config["SETTINGS"].session_rate_limit


def session_limit_per_address() -> str:
    """CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS, per client address, shared by create and refresh."""
    return current_app.config["SETTINGS"].session_rate_limit_per_address


def analytics_limit() -> str:
    """CHATKIT_ANALYTICS_RATE_LIMIT, per client address, shared by every analytics and error route."""
    return current_app.config["SETTINGS"].analytics_rate_limit


def threads_limit() -> str:
    """CHATKIT_THREADS_RATE_LIMIT, per user, for the thread routes."""
    return current_app.config["SETTINGS"].threads_rate_limit


def threads_limit_per_address() -> str:
    """CHATKIT_THREADS_RATE_LIMIT_PER_ADDRESS, per client address, shared by the thread routes."""
    return current_app.config["SETTINGS"].threads_rate_limit_per_address


def analytics_event_limit() -> str:
    """CHATKIT_ANALYTICS_EVENT_RATE_LIMIT: events (a batch counts each), per client address and per user."""
    return current_app.config["SETTINGS"].analytics_event_rate_limit


# One module-level extension object (the init_app pattern); routes decorate with `limiter.limit`.
limiter = Limiter(
    key_func=client_address,
    # No X-RateLimit-* headers on every answer (they cost a storage read per limit per request and
    # the ChatKit page has no use for them); a 429 carries Retry-After (errors.py).
    headers_enabled=False,
    in_memory_fallback_enabled=True,
    swallow_errors=True,
    # O(1) per hit in memory and in Redis, and no burst of twice the limit at a window's edge.
    # (moving-window keeps one entry per hit and inserts at the front of a list: O(hits) per request.)
    strategy="sliding-window-counter",
)


def storage_is_healthy() -> bool:
    """False while the configured storage is unreachable (and the in-memory fallback is in use)."""
    storage = limiter.storage
    try:
        return bool(storage.check())
    except Exception:  # noqa: BLE001 - any storage failure means "not healthy"
        return False


def _rate_limited(error: RateLimitExceeded) -> Response:
    message = f"Rate limit of {error.description} exceeded; retry after the number of seconds in Retry-After."
    return error_response(ApiError("rate_limited", message, 429, headers={"Retry-After": _seconds_until_reset()}))


def _seconds_until_reset() -> str:
    """Seconds until the breached rate limit lets this client through again (at least 1)."""
    breached = limiter.current_limit
    if breached is None:
        return "1"
    return str(max(breached.reset_at - int(time.time()), 1))


def init_app(app: Flask) -> None:
    """Bind the limiter to `app` with the storage from RATELIMIT_STORAGE_URI; a 429 answers the error contract."""
    settings = app.config["SETTINGS"]
    uri = settings.ratelimit_storage_uri
    if uri.startswith("memory://"):
        # The same counters in this process, expired without limits' per-10-ms timer thread.
        uri = rate_limit_storage.SCHEME + uri[len("memory") :]
    app.config["RATELIMIT_STORAGE_URI"] = uri
    app.config["RATELIMIT_KEY_PREFIX"] = settings.ratelimit_key_prefix
    if settings.ratelimit_storage_uri.startswith(("redis://", "rediss://")):
        # Fail fast when Redis is down instead of holding every request for the client's default timeout.
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 0.5, "socket_timeout": 0.5})
    # flask-limiter keeps the first app's key prefix forever; re-read it for each app this
    # process builds (tests build many), so each app's counters stay under its own prefix.
    limiter._key_prefix = ""
    # Likewise its "storage is down, use the in-memory fallback" flag: a new app starts on its own storage.
    limiter._storage_dead = False
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
