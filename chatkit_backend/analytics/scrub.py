"""Removes secrets and personal data from what the page sends before anything is stored.

Every pattern runs in time linear in its input: each one that scans a run of characters may start
only where such a run starts (a one-character look-behind), so no run is rescanned from each of its
positions. `scrub_text` also cuts its input at MAX_SCRUB_CHARS.
"""

from __future__ import annotations

import re
from typing import Any

# Longer strings are cut before scrubbing: the longest field stored (`stack`) is at most this long.
MAX_SCRUB_CHARS = 65536
TRUNCATED = "…[truncated]"

# Shapes that are secrets or personal data wherever they appear. Order matters: specific shapes first.
_SPECIFIC = (
    r"(?P<bearer>\b(?i:bearer)\s+)[A-Za-z0-9._~+/=-]+"
    r"|(?P<jwt>(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"
    r"|(?P<key>\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|\bek_[A-Za-z0-9_-]{8,}|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b)"
    r"|(?P<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
    # `password=…`, `client_secret: …`, `"api_key": "…"` in free text: the key is at most 40
    # characters before the secret word, so each run of key characters costs at most 40 tries.
    r"|(?P<assign>(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{0,40}?"
    r"(?i:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|auth|authorization|credentials?|cookie)"
    r"[\"']?\s*[=:]\s*[\"']?)(?:(?i:bearer|basic)\s+)?[^\s&,;\"'<>]+"
    # Query-string and fragment values (`#access_token=…` in an OAuth redirect).
    r"|(?P<query>[?&#][^=&#\s?\"']+=)[^&#\s\"']*"
)
# Anything long and random-looking: also catches ids, so id fields are spared it (`scrub_id`).
_GENERIC = (
    r"(?P<hex>\b[0-9a-fA-F]{32,}\b)"
    r"|(?P<token>(?<![A-Za-z0-9+_-])(?=[A-Za-z0-9+_-]*[0-9])(?=[A-Za-z0-9+_-]*[A-Za-z])[A-Za-z0-9+_-]{32,}=*)"
)
# One alternation, one pass per string.
_PATTERN = re.compile(_SPECIFIC + "|" + _GENERIC)
_SPECIFIC_PATTERN = re.compile(_SPECIFIC)
# A ChatKit-style id (`cthr_…`, `msg_…`): a lowercase prefix and letters and digits, kept as it is.
_PREFIXED_ID = re.compile(r"[a-z]{1,10}_[A-Za-z0-9]{1,117}")
# Keys whose whole value is a secret, whatever it looks like.
_SECRET_KEYS = re.compile(r"pass(word|wd)?|secret|token|authorization|api[_-]?key|cookie|session|credential", re.I)
# Correlation ids (ours and nginx's $request_id are 32 hex digits) are kept under these keys only,
# so an error report can still be matched to the server's log lines.
_REQUEST_ID_KEYS = frozenset({"request_id", "requestId", "x-request-id"})
_REQUEST_ID_VALUE = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
REDACTED = "[redacted]"
_KEPT_PREFIX = ("bearer", "assign", "query")


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in _KEPT_PREFIX:
        return match.group(kind) + REDACTED
    if kind == "email":
        return "[email]"
    return REDACTED


def scrub_text(text: str) -> str:
    """`text` with bearer tokens, API keys, JWTs, e-mail addresses, long tokens and query values replaced."""
    if len(text) > MAX_SCRUB_CHARS:
        text = text[:MAX_SCRUB_CHARS] + TRUNCATED
    return _PATTERN.sub(_replace, text)


def scrub_id(text: str) -> str:
    """An id field (`thread_id`, `item_id`): a prefixed id is kept unless it is a known secret shape."""
    if _PREFIXED_ID.fullmatch(text):
        return _SPECIFIC_PATTERN.sub(_replace, text)
    return scrub_text(text)


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
