"""Example page and helper module.

The helper itself, `chatkit_backend/static/chatkit-backend.js`, is served by Flask's app static folder at
`/static/chatkit-backend.js`, always. This blueprint adds a CORS header to it (module scripts from another
origin are fetched in CORS mode) and serves `/example`, a copy-paste starting point, with its own static
files under `/example/static/`, only when CHATKIT_EXAMPLE_PAGE allows it (default: on in development only).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from chatkit_backend.config import Settings
from chatkit_backend.errors import ApiError
from chatkit_backend.http_security import content_security_policy

HELPER_FILENAME = "chatkit-backend.js"
CHATKIT_SCRIPT_URL = "https://cdn.platform.openai.com/deployments/chatkit/chatkit.js"
CHATKIT_SCRIPT_ORIGIN = "https://cdn.platform.openai.com"
CHATKIT_API_ORIGIN = "https://api.openai.com"

# The app-wide page policy plus what ChatKit's web component needs: its script and its frame come from
# OpenAI's CDN, and it checks the page's domain key with api.openai.com (docs/frontend.md).
EXAMPLE_PAGE_CSP = content_security_policy(
    {
        "script-src": (CHATKIT_SCRIPT_ORIGIN,),
        "frame-src": (CHATKIT_SCRIPT_ORIGIN,),
        "connect-src": ("'self'", CHATKIT_API_ORIGIN),
    }
)

bp = Blueprint(
    "frontend",
    __name__,
    static_folder="static",
    static_url_path="/example/static",
    template_folder="templates",
)


def example_page_enabled(settings: Settings) -> bool:
    """CHATKIT_EXAMPLE_PAGE when set; otherwise on in development and off everywhere else."""
    if settings.example_page_enabled is None:
        return settings.is_development
    return settings.example_page_enabled


@bp.before_request
def _only_when_enabled() -> None:
    # Covers the page and its static files: when disabled they answer as if they did not exist.
    if not example_page_enabled(current_app.config["SETTINGS"]):
        raise ApiError("not_found", "No such resource. Check the URL.", 404)


@bp.get("/example")
def example_page() -> Response:
    """ChatKit's web component from OpenAI's CDN, wired to this backend with the helper."""
    settings = current_app.config["SETTINGS"]
    page = render_template(
        "frontend/example.html",
        chatkit_script_url=CHATKIT_SCRIPT_URL,
        mode=settings.chatkit_mode,
        domain_key=settings.domain_key,
    )
    response = Response(page)
    response.headers["Content-Security-Policy"] = EXAMPLE_PAGE_CSP
    return response


@bp.after_app_request
def _helper_cors(response: Response) -> Response:
    # A public file without credentials: any page may import it, cross-origin included.
    if request.endpoint == "static" and (request.view_args or {}).get("filename") == HELPER_FILENAME:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response
