"""The one error contract: every non-2xx answer is `{"error": {code, message, request_id[, details]}}`."""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Every code an answer of this service can carry, and its status (`http_error`: any other status werkzeug
# raises). The OpenAPI Error schema lists these; tests/test_errors.py checks that every code raised in the
# package is here with its status, and is described in README's error table and in the OpenAPI document.
ERROR_CODES: dict[str, int | None] = {
    "bad_request": 400,
    "invalid_json": 400,
    "invalid_body": 400,
    "validation_error": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "payload_too_large": 413,
    "event_too_large": 413,
    "batch_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "headers_too_large": 431,
    "internal_error": 500,
    "not_implemented": 501,
    "upstream_bad_request": 502,
    "upstream_auth_failed": 502,
    "workflow_not_found": 502,
    "upstream_error": 502,
    "upstream_unreachable": 502,
    "upstream_invalid_response": 502,
    "not_configured": 503,
    "upstream_rate_limited": 503,
    "analytics_unavailable": 503,
    "database_unavailable": 503,
    "upstream_timeout": 504,
    "http_error": None,
}

# Werkzeug's own exceptions, by status, mapped onto our codes.
_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "No such resource. Check the URL."),
    405: ("method_not_allowed", "This method is not allowed here; see the Allow header."),
    408: ("request_timeout", "The request body did not arrive in time."),
    413: ("payload_too_large", "The request body is larger than this service accepts."),
    415: ("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'."),
    429: ("rate_limited", "Too many requests; retry after the number of seconds in Retry-After."),
    431: ("headers_too_large", "The request headers are too large."),
}


class ApiError(Exception):
    """An error answer: a snake_case code, an HTTP status and a message a developer can act on."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.headers = headers or {}


def validation_error(details: list[dict[str, Any]], message: str | None = None) -> ApiError:
    """A 400 `validation_error`; each detail names a `field` and says what is wrong with it."""
    fields = ", ".join(str(d.get("field")) for d in details)
    return ApiError("validation_error", message or f"Invalid value for: {fields}.", 400, details=details)


def error_response(error: ApiError) -> Response:
    """Render an ApiError as the JSON error contract."""
    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "request_id": g.get("request_id"),
    }
    if error.details is not None:
        body["details"] = error.details
    response = Response(json.dumps({"error": body}), status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


# Deeper than any body this API takes; bounds the recursion of everything that walks a body later.
MAX_JSON_DEPTH = 32
# A lone UTF-16 surrogate (from a JSON escape) cannot be encoded to UTF-8; PostgreSQL text cannot hold NUL.
# As a regular-expression class body, so the OpenAPI document's patterns say the same.
UNSTORABLE_CHARACTERS = r"\x00\ud800-\udfff"
_UNSTORABLE = re.compile(f"[{UNSTORABLE_CHARACTERS}]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _is_storable(body: Any) -> bool:
    """No nesting deeper than MAX_JSON_DEPTH and no string (key or value) with a lone surrogate or NUL."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return False
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return False
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return False
                stack.append((item, depth + 1))
    return True


def get_json_body(*, required: bool = False) -> Any:
    """Parse the request body as JSON, raising the contract's errors for every way it can be wrong.

    An absent or empty body gives None unless `required`. Strict UTF-8 JSON (RFC 8259): no NaN or
    Infinity, no number too large for a float, no lone surrogate, no NUL, at most MAX_JSON_DEPTH levels.
    """
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise ApiError("invalid_json", "A JSON body is required.", 400)
        return None
    if not request.is_json:
        raise ApiError("unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.", 415)
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise ApiError("invalid_json", "The body is not valid UTF-8 JSON.", 400) from None
    if not _is_storable(body):
        raise ApiError(
            "invalid_json",
            f"The body is nested deeper than {MAX_JSON_DEPTH} levels or holds a NUL or lone surrogate character.",
            400,
        )
    return body


def _handle_api_error(error: ApiError) -> Response:
    return error_response(error)


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code, message = _HTTP_CODES.get(status, ("http_error", error.description or "HTTP error."))
    headers: dict[str, str] = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return error_response(ApiError(code, message, status, headers=headers))


def _handle_unexpected(error: Exception) -> Response:
    # The traceback goes to the server log (never to the client); secrets are not in locals we log.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(ApiError("internal_error", "Something went wrong on our side. Retry later.", 500))


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into the JSON contract."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
