"""Whole numbers from the query string: ASCII digits only, bounded, refused in the error contract."""

from __future__ import annotations

import re
from collections.abc import Mapping

from chatkit_backend.errors import validation_error

# [0-9], not \d or str.isdigit: those accept '²' (int() then fails: a 500) and Arabic-Indic digits.
# 18 digits bound int()'s work and stay clear of its 4,300-digit ValueError.
_ASCII_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def whole_number(
    query: Mapping[str, str], field: str, default: int, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """`query[field]` as an int from `minimum` to `maximum` (`default` when absent); else a validation_error."""
    raw = query.get(field)
    if raw is None:
        return default
    value = int(raw) if _ASCII_WHOLE_NUMBER.fullmatch(raw) else None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise validation_error([{"field": field, "message": f"must be a whole number {bounds}"}])
    return value
