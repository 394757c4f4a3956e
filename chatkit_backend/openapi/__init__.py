"""`GET /openapi.json`: the OpenAPI 3.1 document of every public route (built in `document.py`)."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app

from chatkit_backend.rate_limits import limiter

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
@limiter.exempt
def openapi_document():
    """The OpenAPI document, as JSON."""
    # Imported here: the document's ~650 lines are not needed to start, only to answer this route.
    from chatkit_backend.openapi.document import build_document

    return build_document(current_app.config["SETTINGS"])


def init_app(app: Flask) -> None:
    """Register /openapi.json."""
    app.register_blueprint(bp)
