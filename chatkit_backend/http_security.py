"""Proxy trust, CORS and security headers applied to every response."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from chatkit_backend.errors import ApiError

V = TypeVar("V", bound=Callable[..., Any])
_SAME_ORIGIN_ONLY = "chatkit_same_origin_only"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Every HTML page's policy: its own files only (no inline script or style), never framed.
PAGE_POLICY: Mapping[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
}


def content_security_policy(extra: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """PAGE_POLICY as a header value, with `extra` sources added to its directives (or as new directives)."""
    policy = {name: list(sources) for name, sources in PAGE_POLICY.items()}
    for name, sources in (extra or {}).items():
        policy.setdefault(name, []).extend(sources)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())


_PAGE_CSP = content_security_policy()


def is_same_origin_request(allowed_origins: Iterable[str] = ()) -> bool:
    """False for a browser's cross-site request (Sec-Fetch-Site, else Origin) unless its Origin is allowed.

    Browsers send both on state-changing requests and pages cannot forge them; a client that is not a
    browser sends neither and is let through (it holds no victim's cookie).
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() in allowed_origins:
        return True
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    if origin is None:
        return True
    # Older browsers: Origin only. The host is compared, not the scheme: behind a TLS proxy that is not
    # trusted (TRUSTED_PROXY_HOPS=0) the request looks like http while the page is https.
    try:
        return urlsplit(origin).netloc.lower() == request.host.lower()
    except ValueError:
        return False


def same_origin_only(view: V) -> V:
    """Mark a state-changing view: browsers' cross-site requests are refused (403) unless from CORS_ORIGINS."""
    setattr(view, _SAME_ORIGIN_ONLY, True)
    return view


def _refuse_cross_site() -> None:
    # Runs before the rate limits: a cross-site page cannot spend a visitor's budget or get an identity made.
    if request.method in _SAFE_METHODS or request.endpoint is None:
        return
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, _SAME_ORIGIN_ONLY, False):
        return
    if not is_same_origin_request(current_app.config["SETTINGS"].cors_origins):
        raise ApiError(
            "forbidden",
            "Cross-site requests are refused: call this from the service's own origin or one in CORS_ORIGINS.",
            403,
        )


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", _PAGE_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app: Flask) -> None:
    """Trust `TRUSTED_PROXY_HOPS` forwarding hops, allow CORS for `CORS_ORIGINS`, add security headers."""
    settings = app.config["SETTINGS"]
    hops = settings.trusted_proxy_hops
    if hops:
        # With 0 hops no forwarding header is believed: a client cannot choose its own address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]
    if settings.cors_origins:
        # Exact origins only (config refuses '*', 'null' and patterns); the admin API never with
        # credentials, so a listed page cannot read it with the operator's cookie.
        origins = list(settings.cors_origins)
        CORS(
            app,
            resources={
                r"/api/admin/*": {"origins": origins, "supports_credentials": False},
                r"/api/*": {"origins": origins, "supports_credentials": True},
            },
        )
    app.before_request(_refuse_cross_site)
    app.after_request(_security_headers)
    if settings.hsts_seconds:
        hsts = f"max-age={settings.hsts_seconds}; includeSubDomains"

        @app.after_request
        def _hsts(response: Response) -> Response:
            if request.is_secure:
                response.headers.setdefault("Strict-Transport-Security", hsts)
            return response
