"""Who the current user is. The ChatKit `user` always comes from here, never from a request body.

Modes (CHATKIT_IDENTITY_MODE): `anonymous` (a random id in a cookie signed with SECRET_KEY), `jwt`
(`Authorization: Bearer <JWT>`, `sub` is the user) and `header` (set by the trusted reverse proxy).
With CHATKIT_USER_ID_HMAC_KEY the id is an HMAC of the identity, so no raw e-mail leaves the service.

`current_user()` may create an anonymous identity (the cookie is set on the response);
`peek_user()` never creates one and never fails, for code that only tags data with the user.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from chatkit_backend.config import Settings
from chatkit_backend.errors import ApiError

COOKIE_SALT = "chatkit-user-id"
# Every mode's raw id: it is stored (255 characters) and sent to ChatKit; PostgreSQL refuses NUL.
_USER_ID = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,255}")
_BAD_SUB = "the token's 'sub' must be 1 to 255 characters without control characters"
_UNRESOLVED = object()


def current_user() -> str:
    """The current user's ChatKit id. Anonymous mode creates one if needed; other modes raise 401."""
    user = _resolve()
    if user is not None:
        return user
    settings = _settings()
    if settings.identity_mode != "anonymous":
        raise ApiError("unauthorized", _missing_identity_message(settings), 401)
    raw = "anon_" + secrets.token_urlsafe(18)
    g.chatkit_cookie_to_set = raw
    return _remember(settings, raw)


def peek_user() -> str | None:
    """The current request's user id if it carries a valid identity; never creates one, never raises."""
    return _resolve()


def pseudonymise(settings: Settings, raw: str) -> str:
    """The id sent to ChatKit: `raw`, or its HMAC-SHA256 when CHATKIT_USER_ID_HMAC_KEY is set."""
    if not settings.user_id_hmac_key:
        return raw
    digest = hmac.new(settings.user_id_hmac_key.encode(), raw.encode(), hashlib.sha256).hexdigest()
    return "u_" + digest


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def _resolve() -> str | None:
    """Resolve once per request and cache on `g`."""
    cached = g.get("chatkit_user", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        return cached
    settings = _settings()
    raw = _READERS[settings.identity_mode](settings)
    if raw is None or not _USER_ID.fullmatch(raw):
        g.chatkit_user = None
        return None
    return _remember(settings, raw)


def _remember(settings: Settings, raw: str) -> str:
    user = pseudonymise(settings, raw)
    g.chatkit_user = user
    g.log_user = user
    return user


def _cookie_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=COOKIE_SALT)


def _anonymous_user(settings: Settings) -> str | None:
    cookie = request.cookies.get(settings.user_cookie_name)
    if not cookie:
        return None
    try:
        raw, signed_at = _cookie_serializer(settings).loads(
            cookie, max_age=settings.cookie_max_age, return_timestamp=True
        )
    except BadSignature:  # tampered, unsigned or expired: never the claimed id
        return None
    if not (isinstance(raw, str) and raw.startswith("anon_")):
        return None
    if (datetime.now(UTC) - signed_at).total_seconds() > settings.cookie_max_age / 2:
        # Past half its life: signed again with the same id, so a returning visitor keeps their
        # threads; only a visitor away for CHATKIT_COOKIE_MAX_AGE loses the identity.
        g.chatkit_cookie_to_set = raw
    return raw


def _jwt_user(settings: Settings) -> str | None:
    return _verify_jwt(settings)[0]


def _verify_jwt(settings: Settings) -> tuple[str | None, str]:
    """(sub, "") for a valid bearer token, else (None, why)."""
    import jwt  # imported here: only the jwt mode pays for it

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "send 'Authorization: Bearer <JWT>'"
    required = ["exp", "sub"] + (["iss"] if settings.jwt_issuer else []) + (["aud"] if settings.jwt_audience else [])
    try:
        claims = jwt.decode(
            token.strip(),
            settings.jwt_secret or settings.jwt_public_key,
            algorithms=list(settings.jwt_algorithms),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": required, "verify_aud": bool(settings.jwt_audience)},
        )
    except jwt.ExpiredSignatureError:
        return None, "the token has expired"
    except jwt.PyJWTError:
        return None, "the token is invalid"
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        return None, "the token has no 'sub'"
    if not _USER_ID.fullmatch(sub):
        return None, _BAD_SUB
    return sub, ""


def _header_user(settings: Settings) -> str | None:
    if settings.trusted_proxy_hops < 1:  # config refuses this already; never trust a client's header
        return None
    value = request.headers.get(settings.user_header, "").strip()
    return value if _USER_ID.fullmatch(value) else None


_READERS = {"anonymous": _anonymous_user, "jwt": _jwt_user, "header": _header_user}


def _missing_identity_message(settings: Settings) -> str:
    if settings.identity_mode == "jwt":
        return f"Authentication is required: {_verify_jwt(settings)[1]}."
    return f"Authentication is required: the proxy did not send the {settings.user_header} header."


def _set_identity_cookie(response: Response) -> Response:
    raw = g.get("chatkit_cookie_to_set")
    if raw is None:
        return response
    settings = _settings()
    secure = settings.identity_cookie_always_secure or request.is_secure
    response.set_cookie(
        settings.user_cookie_name,
        _cookie_serializer(settings).dumps(raw),
        max_age=settings.cookie_max_age,
        httponly=True,
        secure=secure,
        samesite=settings.cookie_samesite,
        path="/",
    )
    return response


def init_app(app: Flask) -> None:
    """Set the anonymous identity cookie on answers to requests that created one or found it past half its life."""
    app.after_request(_set_identity_cookie)
