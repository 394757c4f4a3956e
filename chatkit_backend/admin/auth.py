"""Admin authentication: the token as a Bearer header, or a signed HttpOnly SameSite=Strict cookie."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from chatkit_backend.errors import ApiError

COOKIE_NAME = "chatkit_admin"
COOKIE_MAX_AGE = 12 * 3600


def _token() -> str:
    return current_app.config["SETTINGS"].admin_token


def token_matches(candidate: str | None) -> bool:
    """Constant-time comparison with the configured admin token."""
    return hmac.compare_digest((candidate or "").encode(), _token().encode())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="chatkit-admin")


def _token_digest() -> str:
    # The cookie names a hash of the token: changing the token logs every browser out.
    return hashlib.sha256(_token().encode()).hexdigest()


def new_cookie_value() -> str:
    return _serializer().dumps({"token": _token_digest()})


def cookie_is_valid() -> bool:
    value = request.cookies.get(COOKIE_NAME)
    if not value:
        return False
    try:
        data = _serializer().loads(value, max_age=COOKIE_MAX_AGE)
    except BadSignature:
        return False
    return isinstance(data, dict) and hmac.compare_digest(str(data.get("token", "")), _token_digest())


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
    """401 in the error contract unless the request carries the admin token or cookie."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            raise ApiError(
                "unauthorized",
                "Send the admin token as 'Authorization: Bearer <token>'.",
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return view(*args, **kwargs)

    return wrapper
