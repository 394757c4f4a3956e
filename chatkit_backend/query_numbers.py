"""Whole numbers from the query string: ASCII digits only, bounded, refused in the error contract."""

from __future__ import annotations

import re
from collections.abc import Mapping

from chatkit_backend.errors import validation_error

# [0-9], not \d or str.isdigit: those accept '²' (int() then fails: a 500) and Arabic-Indic digits.
_ASCII_DIGITS = re.compile(r"[0-9]+")
# Longer numbers are read as this, above any bound: int() never meets its 4,300-digit ValueError.
_HUGE = 10**18


def whole_number(
    query: Mapping[str, str], field: str, default: int, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """`query[field]` as an int from `minimum` to `maximum` (`default` when absent); else a validation_error."""
    raw = query.get(field)
    if raw is None:
        return default
    value = None
    if _ASCII_DIGITS.fullmatch(raw):
        digits = raw.lstrip("0") or "0"
        value = int(digits) if len(digits) <= 18 else _HUGE
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise validation_error([{"field": field, "message": f"must be a whole number {bounds}"}])
    return value
