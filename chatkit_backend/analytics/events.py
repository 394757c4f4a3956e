"""Validation: turns what the page posts into rows for the analytics tables, or says what is wrong.

Well-known fields are checked when present; every other field is kept (scrubbed) in `extra`.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chatkit_backend.analytics.error_groups import fingerprint
from chatkit_backend.analytics.scrub import scrub, scrub_id, scrub_text
from chatkit_backend.errors import ApiError, validation_error

# Kinds of event the batch route accepts; `error` is a frontend error report (stored as one).
EVENT_KINDS = ("message", "thread_change", "thread_load", "tool_change", "ready", "log")
ERROR_KIND = "error"
ERROR_LEVELS = ("debug", "info", "warning", "error", "fatal")

# Longest string of each well-known event and error field; camelCase aliases as ChatKit names them.
EVENT_STRINGS = {"thread_id": 128, "item_id": 128, "event": 64, "name": 128}
ERROR_STRINGS = {"stack": 65536, "url": 4096, "component": 128}
MAX_CLIENT_ID = 128
MAX_TIMESTAMP_TEXT = 64
_ALIASES = {"threadId": "thread_id", "itemId": "item_id"}
_ID_FIELDS = frozenset(_ALIASES.values())
_EVENT_KNOWN = {"id", "type", "timestamp", "data", *EVENT_STRINGS, *_ALIASES}
_ERROR_KNOWN = {"id", "type", "timestamp", "message", "level", "context", *ERROR_STRINGS}


@dataclass(frozen=True)
class Received:
    """What the server knows about the request that carried the events."""

    received_at: datetime
    user_id: str | None
    request_id: str | None
    user_agent: str | None
    client_address: str | None  # None unless CHATKIT_ANALYTICS_STORE_CLIENT_ADDRESS
    scope: str  # whose client ids these are (analytics.ingest.id_scope); never the raw address


class EventTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__("event_too_large", f"An event may be at most {limit} bytes of JSON.", 413)


def check_size(event: Any, limit: int, size: int | None = None) -> None:
    """Raise EventTooLarge when the event's JSON (or the given byte size) exceeds `limit`."""
    if size is None:
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise EventTooLarge(limit)


def require_object(body: Any, what: str = "The body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError("invalid_body", f"{what} must be a JSON object.", 400)
    return body


def _problem(problems: list[dict[str, str]], field: str, message: str) -> None:
    problems.append({"field": field, "message": message})


def _string(body: dict[str, Any], field: str, limit: int, problems: list[dict[str, str]]) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        _problem(problems, field, "must be a string")
        return None
    if len(value) > limit:
        _problem(problems, field, f"must be at most {limit} characters")
        return None
    return value


def _client_id(body: dict[str, Any], problems: list[dict[str, str]]) -> str | None:
    value = body.get("id")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an integer id is kept as its digits, with the same length limit
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_ID:
        _problem(problems, "id", f"must be a string of 1 to {MAX_CLIENT_ID} characters or an integer")
        return None
    return value


def _timestamp(body: dict[str, Any], problems: list[dict[str, str]]) -> datetime | None:
    """Client time: Unix seconds or milliseconds, or an ISO 8601 string; naive times are UTC."""
    value = body.get("timestamp")
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and len(value) <= MAX_TIMESTAMP_TEXT:
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    _problem(problems, "timestamp", "must be Unix seconds or milliseconds, or an ISO 8601 date-time")
    return None


def _object(body: dict[str, Any], field: str, problems: list[dict[str, str]]) -> dict[str, Any] | None:
    value = body.get(field)
    if value is not None and not isinstance(value, dict):
        _problem(problems, field, "must be an object")
        return None
    return value


def _extra(body: dict[str, Any], known: set[str]) -> dict[str, Any] | None:
    extra = {key: value for key, value in body.items() if key not in known}
    return scrub(extra) if extra else None


def _key(kind: str, client_id: str | None) -> str:
    # A client id makes retries idempotent; a server id still makes a spool replay idempotent.
    return f"{kind}:{client_id}" if client_id is not None else f"srv:{uuid.uuid4().hex}"


def _server_fields(received: Received) -> dict[str, Any]:
    return {
        "received_at": received.received_at,
        "user_id": received.user_id,
        "request_id": received.request_id,
        "user_agent": received.user_agent,
        "client_address": received.client_address,
        "scope": received.scope,
    }


def _scrub_strings(strings: dict[str, str | None]) -> dict[str, str | None]:
    # Every stored string is scrubbed; ids keep their shape (a `cthr_…` id is not a secret).
    return {
        field: None if value is None else (scrub_id(value) if field in _ID_FIELDS else scrub_text(value))
        for field, value in strings.items()
    }


def parse_event(kind: str, body: dict[str, Any], received: Received) -> dict[str, Any]:
    """A row for `analytics_events`; raises a validation_error naming each wrong field."""
    problems: list[dict[str, str]] = []
    if _ALIASES.keys() & body.keys():
        body = {_ALIASES.get(key, key): value for key, value in body.items()}
    strings = {field: _string(body, field, limit, problems) for field, limit in EVENT_STRINGS.items()}
    client_id = _client_id(body, problems)
    client_timestamp = _timestamp(body, problems)
    data = _object(body, "data", problems)
    if problems:
        raise validation_error(problems)
    return {
        "event_key": _key(kind, client_id),
        "kind": kind,
        **_scrub_strings(strings),
        "client_timestamp": client_timestamp,
        **_server_fields(received),
        "data": scrub(data) if data else data,
        "extra": _extra(body, _EVENT_KNOWN),
    }


def parse_error_report(body: dict[str, Any], received: Received) -> dict[str, Any]:
    """A scrubbed row for `analytics_error_reports`, with its fingerprint and top frame."""
    problems: list[dict[str, str]] = []
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        _problem(problems, "message", "is required and must be a non-empty string")
    strings = {field: _string(body, field, limit, problems) for field, limit in ERROR_STRINGS.items()}
    level = body.get("level", "error")
    if level not in ERROR_LEVELS:
        _problem(problems, "level", "must be one of " + ", ".join(ERROR_LEVELS))
    client_id = _client_id(body, problems)
    client_timestamp = _timestamp(body, problems)
    context = _object(body, "context", problems)
    if problems:
        raise validation_error(problems)
    message = scrub_text(message[:4096])
    stack = scrub_text(strings["stack"]) if strings["stack"] else None
    group = fingerprint(message, stack)
    return {
        "event_key": _key(ERROR_KIND, client_id),
        "fingerprint": group,
        "message": message,
        "stack": stack,
        "url": scrub_text(strings["url"]) if strings["url"] else None,
        "component": scrub_text(strings["component"]) if strings["component"] else None,
        "level": level,
        "context": scrub(context) if context else context,
        "client_timestamp": client_timestamp,
        **_server_fields(received),
        "extra": _extra(body, _ERROR_KNOWN),
    }


def parse_batch_item(item: Any, received: Received, max_bytes: int) -> tuple[str, dict[str, Any]]:
    """(table, row) for one event of a batch: `{"type": <kind>, ...}`; raises ApiError when it is refused."""
    body = require_object(item, "Each event")
    check_size(body, max_bytes)
    kind = body.get("type")
    if kind == ERROR_KIND:
        return "errors", parse_error_report(body, received)
    if kind not in EVENT_KINDS:
        raise validation_error(
            [{"field": "type", "message": "must be one of " + ", ".join((*EVENT_KINDS, ERROR_KIND))}]
        )
    return "events", parse_event(kind, body, received)
