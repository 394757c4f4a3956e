"""Groups error reports by a fingerprint: the normalised message plus the top stack frame."""

from __future__ import annotations

import hashlib
import re

_FRAME = re.compile(r"^\s*(at\s+.+|[^\s@]*@\S+:\d+(:\d+)?)\s*$")
# Parts of a message that differ between occurrences of the same error.
_VARIABLE = re.compile(
    r"\[redacted\]|\[email\]"
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    r"|\b0x[0-9a-fA-F]+\b|\d+(\.\d+)?"
    r"|'[^']*'|\"[^\"]*\""
)
_POSITION = re.compile(r":\d+(:\d+)?(?=\)?$)")
_QUERY = re.compile(r"\?[^\s)]*")


def normalise_message(message: str) -> str:
    """The message with numbers, ids and quoted values replaced, whitespace collapsed."""
    return " ".join(_VARIABLE.sub("<v>", message).split())[:500]


def top_frame(stack: str | None) -> str | None:
    """The first stack line that looks like a frame, without line/column numbers or query strings."""
    for line in (stack or "").splitlines():
        if _FRAME.match(line):
            return _POSITION.sub("", _QUERY.sub("", line.strip()))[:500]
    return None


def fingerprint(message: str, stack: str | None) -> str:
    """The group id of a scrubbed error report."""
    frame = top_frame(stack) or ""
    return hashlib.sha256(f"{normalise_message(message)}\n{frame}".encode()).hexdigest()[:32]
