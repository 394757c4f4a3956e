"""The OpenAPI 3.1 document for every public route, served at `GET /openapi.json`.

A plain dict built here (no runtime dependency). tests/test_openapi.py fails when a registered
route is missing from it or a documented one no longer exists; tests/test_fuzz.py fuzzes the app
against it with schemathesis. Imported on the first request of the document, not at start.
"""

from __future__ import annotations

from typing import Any

from chatkit_backend.config import Settings
from chatkit_backend.sessions.validation import MAX_SECRET_LENGTH, MAX_STATE_STRING, MAX_THREADS_PAGE

ERROR = {"$ref": "#/components/schemas/Error"}
THREAD_ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"

# What each error status means on every route that can answer it.
_ERROR_DESCRIPTIONS = {
    400: "Bad request: `invalid_json`, `validation_error` (details name the fields) or `bad_request`.",
    401: "`unauthorized`: jwt or header identity mode without a valid identity; on admin routes, a missing "
    "or wrong admin token.",
    404: "`not_found`.",
    405: "`method_not_allowed`; the Allow header lists the methods.",
    413: "`payload_too_large` (the body is larger than MAX_CONTENT_LENGTH); on analytics routes also "
    "`event_too_large` (CHATKIT_ANALYTICS_MAX_EVENT_BYTES) and `batch_too_large` (CHATKIT_ANALYTICS_MAX_BATCH_EVENTS).",
    415: "`unsupported_media_type`: a body that is not `application/json`.",
    429: "`rate_limited`; Retry-After says when to retry.",
    500: "`internal_error`: an unexpected failure (details are in the server log, never in the answer).",
    501: "`not_implemented`: a ChatKit operation this server does not support (e.g. dictation without a transcriber).",
    502: "The ChatKit API failed: `upstream_bad_request`, `upstream_auth_failed`, `workflow_not_found`, "
    "`upstream_error`, `upstream_unreachable` or `upstream_invalid_response`.",
    503: "`not_configured` (OPENAI_API_KEY unset, CHATKIT_WORKFLOW_ID unset in hosted mode, or the route belongs to "
    "the other CHATKIT_MODE) or `upstream_rate_limited` "
    "(ChatKit answered 429; Retry-After is passed on); on analytics routes `analytics_unavailable` (neither the "
    "database nor the spool could take the events; retry with the same ids).",
    504: "`upstream_timeout`: ChatKit gave no complete answer within the configured bound.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}

# Statuses every route can answer whatever it does: unexpected failure only.
_ALWAYS = (500,)
_JSON_BODY = (400, 413, 415)
_UPSTREAM = (502, 503, 504)


def _errors(*statuses: int) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status in sorted({*statuses, *_ALWAYS}):
        answer: dict[str, Any] = {
            "description": _ERROR_DESCRIPTIONS[status],
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
            {"type": "string", "maxLength": MAX_STATE_STRING},
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
    create_body = {
        "type": ["object", "null"],
        "properties": {"state_variables": _state_variables(settings)},
    }
    secret = {"type": "string", "minLength": 1, "maxLength": MAX_SECRET_LENGTH, "pattern": r"^\s*\S"}
    refresh_body = {
        "type": "object",
        "properties": {"client_secret": secret, "state_variables": _state_variables(settings)},
        "required": ["client_secret"],
    }
    create = {
        "tags": ["sessions"],
        "summary": "A client secret for a new ChatKit session of the current user.",
        "requestBody": _json_request(create_body),
        "responses": {
            **_ok("The new session's client secret.", {"$ref": "#/components/schemas/ClientSecret"}),
            **_errors(*_JSON_BODY, 401, 429, *_UPSTREAM),
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
                    **_errors(*_JSON_BODY, 401, 429, *_UPSTREAM),
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
                    **_errors(401, 429, *_UPSTREAM),
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
                        "schema": {"type": "integer", "minimum": 1, "default": 20},
                    },
                    {
                        "name": "order",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
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
                    **_errors(400, 401, 404, 429, *_UPSTREAM),
                },
            }
        },
    }


# Unix seconds or milliseconds (values above 1e11 are milliseconds), years 1 to 9999.
_TIMESTAMP = {
    "oneOf": [
        {"type": "number", "minimum": -62135596800, "exclusiveMaximum": 253402300800000},
        {"type": "string", "format": "date-time", "maxLength": 64},
        {"type": "null"},
    ]
}
_CLIENT_ID = {
    "description": "The client's id for the event: a retry with the same id is stored once.",
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 128}, {"type": "integer"}, {"type": "null"}],
}


def _nullable_string(max_length: int) -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": max_length}


def _analytics_paths(settings: Settings) -> dict[str, Any]:
    tracked = {"type": "object", "required": ["status"], "properties": {"status": {"const": "tracked"}}}

    def single(operation_id: str, summary: str, schema: str, answer: dict[str, Any], what: str) -> dict[str, Any]:
        return {
            "post": {
                "tags": ["analytics"],
                "operationId": operation_id,
                "summary": summary,
                "requestBody": _json_request({"$ref": f"#/components/schemas/{schema}"}, required=True),
                "responses": {**_ok(what, answer), **_errors(*_JSON_BODY, 429, 503)},
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
                "description": "Each item is an Event with `type` one of message, thread_change, thread_load, "
                "tool_change, ready, log; or an ErrorReport with `type: error`. Items are accepted one by one, "
                "so any item is allowed here and the refused ones come back in `rejected`.",
                "requestBody": _json_request(
                    {"type": "array", "maxItems": settings.analytics_max_batch_events, "items": {}}, required=True
                ),
                "responses": {
                    **_ok("What was stored and what was refused.", batch_answer),
                    **_errors(*_JSON_BODY, 429, 503),
                },
            }
        },
    }


def _admin_paths() -> dict[str, Any]:
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
    summary = {
        "type": "object",
        "required": ["since", "until", "bucket", "buckets", "counts", "totals", "distinct_users", "top_errors"],
        "properties": {
            "since": {"type": "string"},
            "until": {"type": "string"},
            "bucket": {"enum": ["hour", "day"]},
            "buckets": {"type": "array", "items": {"type": "string"}},
            "counts": series,
            "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
            "distinct_users": {"type": "integer"},
            "sessions_issued": {"type": "integer"},
            "error_reports": {"type": "integer"},
            "top_errors": {"type": "array", "items": group},
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
                    {"name": "since", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "until", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "bucket", "in": "query", "required": False, "schema": {"enum": ["hour", "day"]}},
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
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                    },
                    {
                        "name": "per_page",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
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


def _selfhosted_paths() -> dict[str, Any]:
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
        }
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


def _components() -> dict[str, Any]:
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "description": "The one error contract: every non-2xx answer of this service.",
                "required": ["error"],
                "additionalProperties": False,
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "request_id"],
                        "additionalProperties": False,
                        "properties": {
                            "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
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
                    "thread_id": _nullable_string(128),
                    "item_id": _nullable_string(128),
                    "event": _nullable_string(64),
                    "name": _nullable_string(128),
                    "data": {"type": ["object", "null"]},
                },
            },
            "ErrorReport": {
                "type": "object",
                "description": "A frontend error. Message, stack and URL are scrubbed of secrets before storage.",
                "required": ["message"],
                "properties": {
                    "id": _CLIENT_ID,
                    "timestamp": _TIMESTAMP,
                    "message": {"type": "string", "minLength": 1, "pattern": r"\S"},
                    "stack": _nullable_string(65536),
                    "url": _nullable_string(4096),
                    "component": _nullable_string(128),
                    "level": {"enum": ["debug", "info", "warning", "error", "fatal"]},
                    "context": {"type": ["object", "null"]},
                },
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
    if settings.admin_token:
        # The admin routes exist only when CHATKIT_ADMIN_TOKEN is set.
        document["paths"].update(_admin_paths())
        document["components"]["securitySchemes"] = {
            "adminToken": {"type": "http", "scheme": "bearer", "description": "CHATKIT_ADMIN_TOKEN"}
        }
    return document
