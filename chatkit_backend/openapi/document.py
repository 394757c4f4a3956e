"""The OpenAPI 3.1 document for every public route, served at `GET /openapi.json`.

A plain dict built here (no runtime dependency). tests/test_openapi.py fails when a registered
route is missing from it or a documented one no longer exists; tests/test_fuzz.py fuzzes the app
against it with schemathesis. Imported on the first request of the document, not at start.
"""

from __future__ import annotations

from typing import Any

from chatkit_backend.analytics.events import (
    ERROR_KIND,
    ERROR_LEVELS,
    ERROR_STRINGS,
    EVENT_KINDS,
    EVENT_STRINGS,
    MAX_CLIENT_ID,
    MAX_TIMESTAMP_TEXT,
)
from chatkit_backend.analytics.queries import BUCKETS
from chatkit_backend.config import Settings
from chatkit_backend.errors import ERROR_CODES, UNSTORABLE_CHARACTERS
from chatkit_backend.sessions.validation import (
    DEFAULT_THREADS_PAGE,
    MAX_SECRET_LENGTH,
    MAX_STATE_STRING,
    MAX_THREADS_PAGE,
    THREAD_ID_PATTERN,
    THREAD_ORDERS,
)

ERROR = {"$ref": "#/components/schemas/Error"}
# What the service stores as text: no NUL (PostgreSQL cannot hold it), no lone surrogate (not UTF-8).
# Any other string in a body is refused with 400 `invalid_json` (errors.get_json_body).
TEXT = f"^[^{UNSTORABLE_CHARACTERS}]*$"
JSON_VALUE = {"$ref": "#/components/schemas/JsonValue"}

# What each error status means on every route that can answer it.
_ERROR_DESCRIPTIONS = {
    400: "Bad request: `invalid_json`, `validation_error` (details name the fields) or `bad_request`; on "
    "analytics routes `invalid_body` (JSON, but not an object, or for a batch not an array).",
    401: "`unauthorized`: jwt or header identity mode without a valid identity; on admin routes, a missing "
    "or wrong admin token.",
    403: "`forbidden`: a browser's cross-site request from an origin not in CORS_ORIGINS (Sec-Fetch-Site, Origin); "
    "on `/metrics` without CHATKIT_ADMIN_TOKEN, a client that is not on loopback or came through a proxy.",
    404: "`not_found`.",
    413: "`payload_too_large`: the body is larger than MAX_CONTENT_LENGTH.",
    415: "`unsupported_media_type`: a body that is not `application/json`.",
    429: "`rate_limited`; Retry-After says when to retry. On admin routes also after too many failed admin "
    "authentications from the address.",
    500: "`internal_error`: an unexpected failure (details are in the server log, never in the answer).",
    501: "`not_implemented`: a ChatKit operation this server does not support (e.g. dictation without a transcriber).",
    502: "The ChatKit API failed: `upstream_bad_request`, `upstream_auth_failed`, `workflow_not_found`, "
    "`upstream_error`, `upstream_unreachable` or `upstream_invalid_response`.",
    503: "`not_configured` (OPENAI_API_KEY unset, CHATKIT_WORKFLOW_ID unset in hosted mode, or the route belongs to "
    "the other CHATKIT_MODE) or `upstream_rate_limited` "
    "(ChatKit answered 429; Retry-After is passed on); on analytics routes `analytics_unavailable` (neither the "
    "database nor the spool could take the events; retry with the same ids); on /api/chatkit "
    "`database_unavailable` (the conversation store cannot be reached; Retry-After).",
    504: "`upstream_timeout`: ChatKit gave no complete answer within the configured bound.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}

# Statuses every route can answer whatever it does: unexpected failure only.
_ALWAYS = (500,)
_JSON_BODY = (400, 413, 415)
_UPSTREAM = (502, 503, 504)


def _errors(*statuses: int, too_large: str = "") -> dict[str, Any]:
    """Error answers by status; `too_large` adds this route's own 413 codes to the description."""
    answers: dict[str, Any] = {}
    for status in sorted({*statuses, *_ALWAYS}):
        answer: dict[str, Any] = {
            "description": _ERROR_DESCRIPTIONS[status] + (f" {too_large}" if status == 413 and too_large else ""),
            "content": {"application/json": {"schema": ERROR}},
        }
        if status in (429, 503):
            answer["headers"] = _RETRY_AFTER
        answers[str(status)] = answer
    return answers


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def _json_request(schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _state_variables(settings: Settings) -> dict[str, Any]:
    value = {
        "oneOf": [
            {"type": "string", "maxLength": MAX_STATE_STRING, "pattern": TEXT},
            {"type": "number"},
            {"type": "boolean"},
        ]
    }
    return {
        "type": ["object", "null"],
        "description": "Only keys listed in CHATKIT_ALLOWED_STATE_VARIABLES; scalar values. null means none.",
        "propertyNames": {"enum": list(settings.allowed_state_variables)},
        "additionalProperties": value,
    }


def _session_paths(settings: Settings) -> dict[str, Any]:
    # Other keys are ignored, but still parsed: they must be storable JSON too (TEXT).
    create_body = {
        "type": ["object", "null"],
        "properties": {"state_variables": _state_variables(settings)},
        "propertyNames": {"pattern": TEXT},
        "additionalProperties": JSON_VALUE,
    }
    # Not blank (ASCII white space is trimmed, as sessions/validation.py does), and storable text (TEXT).
    secret = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_SECRET_LENGTH,
        "pattern": rf"^(?=[ \t\n\r\f\v]*[^ \t\n\r\f\v])[^{UNSTORABLE_CHARACTERS}]*$",
    }
    refresh_body = {
        "type": "object",
        "properties": {"client_secret": secret, "state_variables": _state_variables(settings)},
        "required": ["client_secret"],
        "propertyNames": {"pattern": TEXT},
        "additionalProperties": JSON_VALUE,
    }
    create = {
        "tags": ["sessions"],
        "summary": "A client secret for a new ChatKit session of the current user.",
        "requestBody": _json_request(create_body),
        "responses": {
            **_ok("The new session's client secret.", {"$ref": "#/components/schemas/ClientSecret"}),
            **_errors(*_JSON_BODY, 401, 403, 429, *_UPSTREAM),
        },
    }
    thread = {
        "type": "object",
        "required": ["id", "title", "created_at", "status"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": ["string", "null"]},
            "created_at": {"type": "integer"},
            "status": {"type": "object"},
        },
    }
    return {
        "/api/chatkit/session": {"post": {**create, "operationId": "createSession"}},
        "/api/chatkit/session/": {
            "post": {**create, "operationId": "createSessionTrailingSlash", "summary": "Same as /session."}
        },
        "/api/chatkit/refresh": {
            "post": {
                "tags": ["sessions"],
                "operationId": "refreshSession",
                "summary": "A new client secret for the current user; the session it replaces is cancelled.",
                # The aliases are fallbacks read only when `client_secret` is absent; documenting them as
                # parameters would tell a fuzzer that a malformed alias beside a valid secret must fail.
                "description": "The secret being replaced is `client_secret`; for older clients, a body `token` "
                "or a `?token=` query parameter is read when `client_secret` is absent.",
                "requestBody": _json_request(refresh_body, required=True),
                "responses": {
                    **_ok("The new session's client secret.", {"$ref": "#/components/schemas/ClientSecret"}),
                    **_errors(*_JSON_BODY, 401, 403, 429, *_UPSTREAM),
                },
            }
        },
        "/api/chatkit/session/cancel": {
            "post": {
                "tags": ["sessions"],
                "operationId": "cancelSessions",
                "summary": "Logout: cancel the current user's active sessions.",
                "responses": {
                    **_ok(
                        "How many sessions were cancelled.",
                        {
                            "type": "object",
                            "required": ["cancelled"],
                            "properties": {"cancelled": {"type": "integer", "minimum": 0}},
                        },
                    ),
                    **_errors(401, 403, 429, *_UPSTREAM),
                },
            }
        },
        "/api/chatkit/threads": {
            "get": {
                "tags": ["threads"],
                "operationId": "listThreads",
                "summary": "The current user's threads, one page at a time.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": f"Page size; values above {MAX_THREADS_PAGE} are capped.",
                        "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_THREADS_PAGE},
                    },
                    {
                        "name": "order",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(THREAD_ORDERS), "default": "desc"},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": THREAD_ID_PATTERN},
                    },
                ],
                "responses": {
                    **_ok(
                        "A page of threads.",
                        {
                            "type": "object",
                            "required": ["data", "first_id", "last_id", "has_more"],
                            "properties": {
                                "data": {"type": "array", "items": thread},
                                "first_id": {"type": ["string", "null"]},
                                "last_id": {"type": ["string", "null"]},
                                "has_more": {"type": "boolean"},
                            },
                        },
                    ),
                    **_errors(400, 401, 429, *_UPSTREAM),
                },
            }
        },
        "/api/chatkit/threads/{thread_id}": {
            "delete": {
                "tags": ["threads"],
                "operationId": "deleteThread",
                "summary": "Delete one of the current user's threads; another user's thread is 404.",
                "parameters": [
                    {
                        "name": "thread_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": THREAD_ID_PATTERN},
                    }
                ],
                "responses": {
                    **_ok(
                        "The thread is deleted.",
                        {
                            "type": "object",
                            "required": ["id", "deleted"],
                            "properties": {"id": {"type": "string"}, "deleted": {"const": True}},
                        },
                    ),
                    **_errors(400, 401, 403, 404, 429, *_UPSTREAM),
                },
            }
        },
    }


# Unix seconds or milliseconds (values above 1e11 are milliseconds), years 1 to 9999.
_TIMESTAMP = {
    "oneOf": [
        {"type": "number", "minimum": -62135596800, "exclusiveMaximum": 253402300800000},
        {"type": "string", "format": "date-time", "maxLength": MAX_TIMESTAMP_TEXT, "pattern": TEXT},
        {"type": "null"},
    ]
}
_CLIENT_ID = {
    "description": "The client's id for the event: a retry with the same id is stored once.",
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_CLIENT_ID, "pattern": TEXT},
        {"type": "integer"},
        {"type": "null"},
    ],
}


def _nullable_string(max_length: int) -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": max_length, "pattern": TEXT}


# A JSON object whose strings and keys are all storable text.
_OBJECT = {"type": ["object", "null"], "propertyNames": {"pattern": TEXT}, "additionalProperties": JSON_VALUE}


def _analytics_paths(settings: Settings) -> dict[str, Any]:
    tracked = {"type": "object", "required": ["status"], "properties": {"status": {"const": "tracked"}}}

    event_bytes = settings.analytics_max_event_bytes
    event_too_large = (
        f"`event_too_large`: the event is over {event_bytes} bytes of JSON (CHATKIT_ANALYTICS_MAX_EVENT_BYTES)."
    )

    def single(operation_id: str, summary: str, schema: str, answer: dict[str, Any], what: str) -> dict[str, Any]:
        return {
            "post": {
                "tags": ["analytics"],
                "operationId": operation_id,
                "summary": summary,
                "description": f"At most {event_bytes} bytes of JSON; a larger body is 413 `event_too_large`.",
                "requestBody": _json_request({"$ref": f"#/components/schemas/{schema}"}, required=True),
                "responses": {**_ok(what, answer), **_errors(*_JSON_BODY, 429, 503, too_large=event_too_large)},
            }
        }

    batch_answer = {
        "type": "object",
        "required": ["status", "accepted", "rejected"],
        "properties": {
            "status": {"const": "tracked"},
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "code", "message"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": ["array", "null"]},
                    },
                },
            },
        },
    }
    return {
        "/api/analytics/message": single(
            "trackMessage", "One message event (ChatKit's response.start / response.end).", "Event", tracked, "Stored."
        ),
        "/api/analytics/thread-change": single(
            "trackThreadChange", "One thread change (ChatKit's thread.change {threadId}).", "Event", tracked, "Stored."
        ),
        "/api/errors": single(
            "logError",
            "One frontend error report, scrubbed and grouped by fingerprint.",
            "ErrorReport",
            {"type": "object", "required": ["status"], "properties": {"status": {"const": "logged"}}},
            "Stored.",
        ),
        "/api/analytics/events": {
            "post": {
                "tags": ["analytics"],
                "operationId": "trackEvents",
                "summary": "A batch of typed events; valid ones are stored, the others reported by index.",
                "description": f"Each item is an Event with `type` one of {', '.join(EVENT_KINDS)}; "
                f"or an ErrorReport with `type: {ERROR_KIND}`. Items are accepted one by one, "
                "so any item is allowed here and the refused ones come back in `rejected` (an item over "
                f"{event_bytes} bytes of JSON as `event_too_large`). More than "
                f"{settings.analytics_max_batch_events} items is 413 `batch_too_large`.",
                "requestBody": _json_request(
                    {"type": "array", "maxItems": settings.analytics_max_batch_events, "items": JSON_VALUE},
                    required=True,
                ),
                "responses": {
                    **_ok("What was stored and what was refused.", batch_answer),
                    **_errors(
                        *_JSON_BODY,
                        429,
                        503,
                        too_large=f"`batch_too_large`: more than {settings.analytics_max_batch_events} events "
                        "(CHATKIT_ANALYTICS_MAX_BATCH_EVENTS).",
                    ),
                },
            }
        },
    }


# An ISO 8601 date or date-time (one without an offset is read as UTC); empty means the default.
_DATE_OR_DATE_TIME = {"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}, {"maxLength": 0}]}


def _admin_paths() -> dict[str, Any]:
    from chatkit_backend.admin.routes import MAX_PAGE, MAX_PER_PAGE

    bearer = [{"adminToken": []}]
    group = {
        "type": "object",
        "required": ["fingerprint", "message", "count", "first_seen", "last_seen"],
        "properties": {
            "fingerprint": {"type": "string"},
            "message": {"type": "string"},
            "top_frame": {"type": ["string", "null"]},
            "component": {"type": ["string", "null"]},
            "level": {"type": ["string", "null"]},
            "count": {"type": "integer"},
            "first_seen": {"type": "string"},
            "last_seen": {"type": "string"},
        },
    }
    series = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}}
    integer = {"type": "integer"}
    conversations = {
        "type": "object",
        "description": "Self-hosted ChatKit in the range: threads started, model turns and their figures.",
        "required": [
            "threads",
            "turns",
            "model_errors",
            "input_tokens",
            "output_tokens",
            "feedback",
            "first_token_ms",
        ],
        "properties": {
            **{name: integer for name in ("threads", "turns", "model_errors", "input_tokens", "output_tokens")},
            "feedback": {"type": "object", "properties": {"positive": integer, "negative": integer}},
            "first_token_ms": {
                "type": "object",
                "properties": {"p50": {"type": ["integer", "null"]}, "p95": {"type": ["integer", "null"]}},
            },
            "series": {"type": "object", "additionalProperties": {"type": "array", "items": integer}},
        },
    }
    summary = {
        "type": "object",
        "required": ["since", "until", "bucket", "buckets", "counts", "totals", "distinct_users", "top_errors"],
        "properties": {
            "since": {"type": "string"},
            "until": {"type": "string"},
            "bucket": {"enum": list(BUCKETS)},
            "buckets": {"type": "array", "items": {"type": "string"}},
            "counts": series,
            "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
            "distinct_users": {"type": "integer"},
            "sessions_issued": {"type": "integer"},
            "error_reports": {"type": "integer"},
            "top_errors": {"type": "array", "items": group},
            "conversations": conversations,
        },
    }
    html = {"text/html": {"schema": {"type": "string"}}}
    form = {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"token": {"type": "string"}, "csrf_token": {"type": "string"}}}
        }
    }
    return {
        "/api/admin/analytics/summary": {
            "get": {
                "tags": ["admin"],
                "operationId": "adminSummary",
                "summary": "Counts per kind per bucket, distinct users, sessions issued and the top error groups.",
                "security": bearer,
                "parameters": [
                    {"name": "since", "in": "query", "required": False, "schema": _DATE_OR_DATE_TIME},
                    {"name": "until", "in": "query", "required": False, "schema": _DATE_OR_DATE_TIME},
                    {"name": "bucket", "in": "query", "required": False, "schema": {"enum": list(BUCKETS)}},
                ],
                "description": "`since` and `until` are ISO 8601 dates or date-times, `since` before `until`, "
                "spanning at most the allowed number of buckets (400 `validation_error` otherwise).",
                "responses": {**_ok("The summary.", summary), **_errors(400, 401, 429)},
            }
        },
        "/api/admin/errors": {
            "get": {
                "tags": ["admin"],
                "operationId": "adminErrors",
                "summary": "Error groups, most frequent first, paged.",
                "security": bearer,
                "parameters": [
                    {
                        "name": "page",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                    },
                    {
                        "name": "per_page",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                    },
                ],
                "responses": {
                    **_ok(
                        "A page of error groups.",
                        {
                            "type": "object",
                            "required": ["items", "page", "per_page", "total"],
                            "properties": {
                                "items": {"type": "array", "items": group},
                                "page": {"type": "integer"},
                                "per_page": {"type": "integer"},
                                "total": {"type": "integer"},
                            },
                        },
                    ),
                    **_errors(400, 401, 429),
                },
            }
        },
        "/admin": {
            "get": {
                "tags": ["admin pages"],
                "operationId": "adminDashboard",
                "summary": "The dashboard (HTML) when signed in; the sign-in form otherwise.",
                "responses": {"200": {"description": "An HTML page.", "content": html}, **_errors(400, 429)},
            }
        },
        "/admin/login": {
            "post": {
                "tags": ["admin pages"],
                "operationId": "adminLogin",
                "summary": "Exchange the admin token for an HttpOnly, SameSite=Strict cookie (a browser form).",
                "requestBody": {"required": False, "content": form},
                "responses": {
                    "303": {"description": "Signed in; to the dashboard."},
                    "401": {
                        "description": "Wrong token or a cross-site post: the sign-in form again.",
                        "content": html,
                    },
                    **_errors(400, 413, 429),
                },
            }
        },
        "/admin/logout": {
            "post": {
                "tags": ["admin pages"],
                "operationId": "adminLogout",
                "summary": "Clear the admin cookie (needs the form's CSRF token).",
                "requestBody": {"required": False, "content": form},
                "responses": {
                    "303": {"description": "Signed out; to the dashboard's sign-in form."},
                    "403": {"description": "No valid admin cookie or CSRF token: the sign-in form.", "content": html},
                    **_errors(400, 413, 429),
                },
            }
        },
        "/admin/static/{filename}": {
            "get": {
                "tags": ["admin pages"],
                "operationId": "adminStatic",
                "summary": "The dashboard's stylesheet.",
                "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The file.", "content": {"text/css": {"schema": {"type": "string"}}}},
                    **_errors(404),
                },
            }
        },
    }


def _frontend_paths() -> dict[str, Any]:
    html = {"text/html": {"schema": {"type": "string"}}}
    return {
        "/example": {
            "get": {
                "tags": ["frontend"],
                "operationId": "examplePage",
                "summary": "A copy-paste example page: ChatKit's web component wired to this backend with "
                "`/static/chatkit-backend.js`. Only when CHATKIT_EXAMPLE_PAGE allows it (404 otherwise).",
                "responses": {"200": {"description": "The page.", "content": html}, **_errors(404)},
            }
        },
        "/example/static/{filename}": {
            "get": {
                "tags": ["frontend"],
                "operationId": "exampleStatic",
                "summary": "The example page's own files (404 when the page is off).",
                "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {
                            "text/css": {"schema": {"type": "string"}},
                            "text/javascript": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(404),
                },
            }
        },
    }


IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _selfhosted_paths() -> dict[str, Any]:
    attachment = {
        "type": "object",
        "required": ["id", "name", "mime_type", "type"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "mime_type": {"type": "string"},
            "type": {"enum": ["image", "file"]},
            "preview_url": {"type": "string", "description": "images only: a signed link to the image"},
        },
    }
    from chatkit_backend.selfhosted.routes import REQUEST_TYPES

    request = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"enum": sorted(REQUEST_TYPES)},
            "params": {"type": "object", "description": "The operation's parameters, as ChatKit JS sends them."},
            "metadata": {"type": "object"},
        },
    }
    return {
        "/api/chatkit": {
            "post": {
                "tags": ["chatkit"],
                "operationId": "chatkit",
                "summary": "One ChatKit operation (CHATKIT_MODE=self_hosted): this service is ChatKit's server. "
                "Operations that make the model work answer a stream of ChatKit events; the others JSON. Another "
                "user's thread, item or attachment is 404, as if it did not exist.",
                "requestBody": _json_request(request, required=True),
                "responses": {
                    "200": {
                        "description": "The operation's answer: ChatKit's JSON, or `data: <event>` frames.",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(*_JSON_BODY, 401, 404, 429, 501, 503),
                },
            }
        },
        "/api/chatkit/attachments": {
            "post": {
                "tags": ["chatkit"],
                "operationId": "chatkitUpload",
                "summary": "ChatKit's direct upload (`uploadStrategy: {type: 'direct'}`): one file, kept for the "
                "current user. Its type is judged by its content (CHATKIT_UPLOAD_TYPES: images, PDF, plain text by "
                "default); its size is limited by CHATKIT_UPLOAD_MAX_BYTES, not MAX_CONTENT_LENGTH.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                },
                "responses": {
                    **_ok("ChatKit's attachment: its id goes into the next message's `attachments`.", attachment),
                    **_errors(400, 401, 413, 415, 429, 503),
                },
            }
        },
        "/api/chatkit/attachments/{attachment_id}/preview": {
            "get": {
                "tags": ["chatkit"],
                "operationId": "chatkitAttachmentPreview",
                "summary": "An uploaded image, for the signed link (`preview_url`) its upload answered; ChatKit's "
                "frame loads it without the page's cookies.",
                "parameters": [
                    {"name": "attachment_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "The image.",
                        "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGES},
                    },
                    **_errors(404, 429, 503),
                },
            }
        },
    }


def _health_paths() -> dict[str, Any]:
    check = {
        "type": "object",
        "required": ["ok"],
        "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}},
    }
    readiness = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "degraded", "not_ready"]},
            "checks": {"type": "object", "additionalProperties": check},
        },
    }
    return {
        "/health": {
            "get": {
                "tags": ["health"],
                "operationId": "health",
                "summary": "Liveness: the process answers. Never rate limited.",
                "responses": {
                    **_ok(
                        "Alive.",
                        {"type": "object", "required": ["status"], "properties": {"status": {"const": "healthy"}}},
                    ),
                    **_errors(),
                },
            }
        },
        "/ready": {
            "get": {
                "tags": ["health"],
                "operationId": "ready",
                "summary": "Readiness: database, rate-limit storage, ChatKit credentials. Never rate limited.",
                "responses": {
                    **_ok("Ready, or degraded (rate limits counted per process).", readiness),
                    "503": {
                        "description": "Not ready: a check failed.",
                        "content": {"application/json": {"schema": readiness}},
                    },
                    **_errors(),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["meta"],
                "operationId": "openapi",
                "summary": "This document. Never rate limited.",
                "responses": {**_ok("The OpenAPI 3.1 document.", {"type": "object"}), **_errors()},
            }
        },
    }


def _metrics_paths(settings: Settings) -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    operation: dict[str, Any] = {
        "tags": ["meta"],
        "operationId": "metrics",
        "summary": "Prometheus metrics of every worker (CHATKIT_METRICS): with the admin token as a Bearer token, "
        "or, without CHATKIT_ADMIN_TOKEN, to a loopback client that came through no proxy. Never rate limited.",
        "responses": {
            "200": {"description": "The Prometheus text format (version 0.0.4).", "content": text},
            **_errors(401 if settings.admin_token else 403),
        },
    }
    if settings.admin_token:
        operation["security"] = [{"adminToken": []}]
    return {"/metrics": {"get": operation}}


def _components() -> dict[str, Any]:
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "description": "The one error contract: every non-2xx answer of this service. Besides the "
                "statuses each route lists, a method a route does not take is 405 `method_not_allowed` (the Allow "
                "header lists the methods), a body that does not arrive in time under gunicorn is 408 "
                "`request_timeout`, oversized headers 431 `headers_too_large`, and any other HTTP error "
                "`http_error` (e.g. 416 for a Range a static file cannot serve).",
                "required": ["error"],
                "additionalProperties": False,
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "request_id"],
                        "additionalProperties": False,
                        "properties": {
                            "code": {"enum": sorted(ERROR_CODES)},
                            "message": {"type": "string", "minLength": 1},
                            "request_id": {"type": ["string", "null"]},
                            "details": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["field", "message"],
                                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                                },
                            },
                        },
                    }
                },
            },
            "Event": {
                "type": "object",
                "description": "A ChatKit event the page forwards. `threadId` and `itemId` are read as "
                "`thread_id` and `item_id` (ChatKit names them so). Other fields are kept, scrubbed, in `extra`.",
                "properties": {
                    "id": _CLIENT_ID,
                    "timestamp": _TIMESTAMP,
                    **{field: _nullable_string(limit) for field, limit in EVENT_STRINGS.items()},
                    "data": _OBJECT,
                },
                "propertyNames": {"pattern": TEXT},
                "additionalProperties": JSON_VALUE,
            },
            "ErrorReport": {
                "type": "object",
                "description": "A frontend error. Message, stack and URL are scrubbed of secrets before storage.",
                "required": ["message"],
                "properties": {
                    "id": _CLIENT_ID,
                    "timestamp": _TIMESTAMP,
                    # Not blank, and storable text (TEXT).
                    "message": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": rf"^(?=[\s\S]*\S)[^{UNSTORABLE_CHARACTERS}]*$",
                    },
                    **{field: _nullable_string(limit) for field, limit in ERROR_STRINGS.items()},
                    "level": {"enum": list(ERROR_LEVELS)},
                    "context": _OBJECT,
                },
                "propertyNames": {"pattern": TEXT},
                "additionalProperties": JSON_VALUE,
            },
            "JsonValue": {
                "description": "Any JSON value whose strings and keys hold no NUL and no lone surrogate.",
                "type": ["string", "number", "boolean", "null", "array", "object"],
                "pattern": TEXT,
                "items": JSON_VALUE,
                "propertyNames": {"pattern": TEXT},
                "additionalProperties": JSON_VALUE,
            },
            "ClientSecret": {
                "type": "object",
                "required": ["client_secret", "expires_at"],
                "properties": {
                    "client_secret": {"type": "string", "minLength": 1},
                    "expires_at": {"type": "integer", "description": "Unix seconds."},
                },
            },
        }
    }


def build_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document for this service as configured (state-variable names come from settings)."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "chatkit-backend",
            "version": "0.1.0",
            "description": "A Flask backend for OpenAI ChatKit. Every non-2xx answer is the Error schema.",
        },
        "paths": {
            **_health_paths(),
            **_session_paths(settings),
            **_selfhosted_paths(),
            **_analytics_paths(settings),
            **_frontend_paths(),
        },
        "components": _components(),
    }
    if settings.metrics_enabled:
        document["paths"].update(_metrics_paths(settings))
    if settings.admin_token:
        # The admin routes exist only when CHATKIT_ADMIN_TOKEN is set.
        document["paths"].update(_admin_paths())
        document["components"]["securitySchemes"] = {
            "adminToken": {"type": "http", "scheme": "bearer", "description": "CHATKIT_ADMIN_TOKEN"}
        }
    return document
