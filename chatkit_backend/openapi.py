"""The OpenAPI 3.1 document for every public route, served at `GET /openapi.json`.

A plain dict built here (no runtime dependency). tests/test_openapi.py fails when a registered
route is missing from it or a documented one no longer exists; tests/test_fuzz.py fuzzes the app
against it with schemathesis.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from chatkit_backend.config import Settings
from chatkit_backend.rate_limits import limiter
from chatkit_backend.sessions.validation import MAX_SECRET_LENGTH, MAX_STATE_STRING, MAX_THREADS_PAGE

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
THREAD_ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"

# What each error status means on every route that can answer it.
_ERROR_DESCRIPTIONS = {
    400: "Bad request: `invalid_json`, `validation_error` (details name the fields) or `bad_request`.",
    401: "`unauthorized`: jwt or header identity mode without a valid identity.",
    404: "`not_found`.",
    405: "`method_not_allowed`; the Allow header lists the methods.",
    413: "`payload_too_large`: the body is larger than MAX_CONTENT_LENGTH.",
    415: "`unsupported_media_type`: a body that is not `application/json`.",
    429: "`rate_limited`; Retry-After says when to retry.",
    500: "`internal_error`: an unexpected failure (details are in the server log, never in the answer).",
    502: "The ChatKit API failed: `upstream_bad_request`, `upstream_auth_failed`, `workflow_not_found`, "
    "`upstream_error`, `upstream_unreachable` or `upstream_invalid_response`.",
    503: "`not_configured` (OPENAI_API_KEY or CHATKIT_WORKFLOW_ID unset) or `upstream_rate_limited` "
    "(ChatKit answered 429; Retry-After is passed on).",
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
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chatkit-backend",
            "version": "0.1.0",
            "description": "A Flask backend for OpenAI ChatKit. Every non-2xx answer is the Error schema.",
        },
        "paths": {**_health_paths(), **_session_paths(settings)},
        "components": _components(),
    }


@bp.get("/openapi.json")
@limiter.exempt
def openapi_document():
    """The OpenAPI document, as JSON."""
    return build_document(current_app.config["SETTINGS"])
