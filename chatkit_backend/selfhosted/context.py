"""What ChatKit hands to every store method and hook: the user the server vouches for, and the request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """The caller of one ChatKit request. The async side never reads Flask's `g` or `request`: only this."""

    user: str
    request_id: str | None = None
    locale: str | None = None
