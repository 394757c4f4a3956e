"""Admin authentication: the token as a Bearer header, or a signed HttpOnly SameSite=Strict cookie.

Failed authentications are limited per client address, and checked before the token is: an address
over the limit gets 429 whatever it sends, so the answer is no oracle for guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse_many
from sqlalchemy import delete, insert, select

from chatkit_backend.admin.models import ADMIN_REVOKED_COOKIES
from chatkit_backend.db import get_db
from chatkit_backend.errors import ApiError
from chatkit_backend.rate_limits import client_address, limiter

log = logging.getLogger(__name__)

COOKIE_NAME = "chatkit_admin"
COOKIE_MAX_AGE = 12 * 3600


def _token() -> str:
    return current_app.config["SETTINGS"].admin_token


def token_matches(candidate: str | None) -> bool:
    """Constant-time comparison with the configured admin token."""
    return hmac.compare_digest((candidate or "").encode(), _token().encode())


def _failure_key() -> tuple[str, ...]:
    return (current_app.config["SETTINGS"].ratelimit_key_prefix, "admin-auth-failures", client_address())


def _failure_limits() -> list[RateLimitItem]:
    # CHATKIT_ADMIN_AUTH_FAILURE_LIMIT: wrong tokens (bearer or sign-in form) per client address.
    return parse_many(current_app.config["SETTINGS"].admin_auth_failure_limit)


def failures_retry_after() -> int | None:
    """Seconds until this address may try again when it is over the failed-authentication limit, else None."""
    key = _failure_key()
    try:
        for limit in _failure_limits():
            if not limiter.limiter.test(limit, *key):
                reset = limiter.limiter.get_window_stats(limit, *key).reset_time
                return max(1, math.ceil(reset - time.time()))
    except Exception:  # like every limit here, a storage outage never refuses a request
        log.warning("admin authentication limit: storage unavailable", exc_info=True)
    return None


def record_failure() -> None:
    """Count one failed admin authentication against the client's address."""
    key = _failure_key()
    try:
        for limit in _failure_limits():
            limiter.limiter.hit(limit, *key)
    except Exception:  # as above
        log.warning("admin authentication limit: storage unavailable", exc_info=True)


def too_many_failures(retry_after: int) -> ApiError:
    return ApiError(
        "rate_limited",
        "Too many failed admin authentications from this address; retry after the seconds in Retry-After.",
        429,
        headers={"Retry-After": str(retry_after)},
    )


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="chatkit-admin")


def _token_digest() -> str:
    # The cookie names a hash of the token: changing the token logs every browser out.
    return hashlib.sha256(_token().encode()).hexdigest()


def new_cookie_value() -> str:
    """A signed cookie bound to the token, with an id that logout can revoke."""
    return _serializer().dumps({"token": _token_digest(), "id": secrets.token_urlsafe(24)})


def _signed_cookie() -> tuple[str, datetime] | None:
    """(id, signed at) of the request's admin cookie when its signature, age and token are right."""
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return None
    try:
        data, signed_at = _serializer().loads(value, max_age=COOKIE_MAX_AGE, return_timestamp=True)
    except BadSignature:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("id"), str)):
        return None  # also a cookie from before revocable ids: sign in again
    if not hmac.compare_digest(str(data.get("token", "")), _token_digest()):
        return None
    return data["id"], signed_at


def cookie_is_valid() -> bool:
    """True when the admin cookie is signed, unexpired, for the current token and not revoked by logout."""
    cached = g.get("chatkit_admin_cookie_valid")
    if cached is not None:
        return cached
    signed = _signed_cookie()
    valid = False
    if signed is not None:
        query = select(ADMIN_REVOKED_COOKIES.c.cookie_id).where(ADMIN_REVOKED_COOKIES.c.cookie_id == signed[0])
        with get_db().engine.connect() as connection:
            valid = connection.execute(query).first() is None
    g.chatkit_admin_cookie_valid = valid
    return valid


def revoke_cookie() -> None:
    """Revoke the request's admin cookie in the database (every worker sees it); forget expired revocations."""
    signed = _signed_cookie()
    if signed is None:
        return
    cookie_id, signed_at = signed
    now = datetime.now(UTC)
    with get_db().engine.begin() as connection:
        connection.execute(delete(ADMIN_REVOKED_COOKIES).where(ADMIN_REVOKED_COOKIES.c.expires_at < now))
        connection.execute(
            insert(ADMIN_REVOKED_COOKIES).values(
                cookie_id=cookie_id, expires_at=signed_at + timedelta(seconds=COOKIE_MAX_AGE)
            )
        )
    g.chatkit_admin_cookie_valid = False


def csrf_token() -> str:
    """A token for the dashboard's forms, bound to the admin cookie."""
    cookie = request.cookies.get(COOKIE_NAME, "")
    return hmac.new(current_app.config["SECRET_KEY"].encode(), cookie.encode(), hashlib.sha256).hexdigest()


def csrf_is_valid() -> bool:
    return cookie_is_valid() and hmac.compare_digest(request.form.get("csrf_token", ""), csrf_token())


def is_admin() -> bool:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return token_matches(header[len("Bearer ") :])
    return cookie_is_valid()


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 in the error contract unless the request carries the admin token or cookie; 429 after repeated failures."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        retry_after = failures_retry_after()
        if retry_after is not None:
            raise too_many_failures(retry_after)
        if not is_admin():
            if "Authorization" in request.headers:
                # Only a sent token is a guess: a cross-site <img> (no header, no Strict cookie) must not
                # spend the operator's budget.
                record_failure()
            raise ApiError(
                "unauthorized",
                "Send the admin token as 'Authorization: Bearer <token>'.",
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return view(*args, **kwargs)

    return wrapper
