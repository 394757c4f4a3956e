"""Proxy trust, CORS and security headers applied to every response."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if response.mimetype == "text/html":
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
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
        CORS(app, resources={r"/api/*": {"origins": list(settings.cors_origins)}}, supports_credentials=True)
    app.after_request(_security_headers)
    if settings.hsts_seconds:
        hsts = f"max-age={settings.hsts_seconds}; includeSubDomains"

        @app.after_request
        def _hsts(response: Response) -> Response:
            if request.is_secure:
                response.headers.setdefault("Strict-Transport-Security", hsts)
            return response
