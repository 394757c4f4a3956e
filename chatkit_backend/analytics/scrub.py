"""Removes secrets and personal data from what the page sends before anything is stored."""

from __future__ import annotations

import re
from typing import Any

# One alternation, one pass per string. Order matters: the specific shapes before the generic tokens.
_PATTERN = re.compile(
    r"(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9._~+/=-]+"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"
    r"|(?P<key>\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|\bek_[A-Za-z0-9_-]{8,})"
    r"|(?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    r"|(?P<query>[?&][^=&#\s?\"']+=)[^&#\s\"']*"
    r"|(?P<hex>\b[0-9a-fA-F]{32,}\b)"
    r"|(?P<token>(?<![A-Za-z0-9+_-])(?=[A-Za-z0-9+_-]*[0-9])(?=[A-Za-z0-9+_-]*[A-Za-z])[A-Za-z0-9+_-]{32,}=*)"
)
# Keys whose whole value is a secret, whatever it looks like.
_SECRET_KEYS = re.compile(r"pass(word|wd)?|secret|token|authorization|api[_-]?key|cookie|session|credential", re.I)
# Correlation ids (ours and nginx's $request_id are 32 hex digits) are kept under these keys only,
# so an error report can still be matched to the server's log lines.
_REQUEST_ID_KEYS = frozenset({"request_id", "requestId", "x-request-id"})
_REQUEST_ID_VALUE = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
REDACTED = "[redacted]"


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "bearer":
        return match.group("bearer") + REDACTED
    if kind == "query":
        return match.group("query") + REDACTED
    if kind == "email":
        return "[email]"
    return REDACTED


def scrub_text(text: str) -> str:
    """`text` with bearer tokens, API keys, JWTs, e-mail addresses, long tokens and query values replaced."""
    return _PATTERN.sub(_replace, text)


def scrub(value: Any) -> Any:
    """Scrub every string inside a JSON value; values under secret-looking keys are dropped whole."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub_item(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def _scrub_item(key: Any, item: Any) -> Any:
    if isinstance(key, str):
        if key in _REQUEST_ID_KEYS and isinstance(item, str) and _REQUEST_ID_VALUE.fullmatch(item):
            return item
        if _SECRET_KEYS.search(key):
            return REDACTED
    return scrub(item)
