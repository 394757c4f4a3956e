"""Checks for what the browser sends to the session routes; each raises the contract's validation_error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatkit_backend.errors import validation_error
from chatkit_backend.query_numbers import whole_number
from chatkit_backend.upstream import StateValue

MAX_STATE_STRING = 1024
MAX_SECRET_LENGTH = 4096
MAX_THREADS_PAGE = 100
DEFAULT_THREADS_PAGE = 20
THREAD_ORDERS = ("asc", "desc")
THREAD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
THREAD_ID = re.compile(THREAD_ID_PATTERN)


def _object_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise validation_error([{"field": "body", "message": "must be a JSON object"}])
    return body


def state_variables(body: Any, allowed: tuple[str, ...]) -> dict[str, StateValue]:
    """The body's `state_variables`, only keys in CHATKIT_ALLOWED_STATE_VARIABLES, scalar values only.

    Anything else in the body (a `user_id` for one) is ignored: the user comes from identity.
    """
    variables = _object_body(body).get("state_variables")
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise validation_error([{"field": "state_variables", "message": "must be an object"}])
    problems = []
    for key, value in variables.items():
        field = f"state_variables.{key}"
        if key not in allowed:
            problems.append({"field": field, "message": "is not an allowed state variable"})
        elif not isinstance(value, str | int | float | bool):
            problems.append({"field": field, "message": "must be a string, number or boolean"})
        elif isinstance(value, str) and len(value) > MAX_STATE_STRING:
            problems.append({"field": field, "message": f"must be at most {MAX_STATE_STRING} characters"})
    if problems:
        raise validation_error(problems)
    return variables


# What surrounds a secret pasted into a request; str.strip() would also eat Unicode separators, which the
# OpenAPI document's ECMAScript pattern (\s) does not call white space.
ASCII_SPACE = " \t\n\r\f\v"


def refresh_secret(body: Any, query: Mapping[str, str]) -> str:
    """The secret being refreshed: JSON `client_secret` or `token`, or `?token=`."""
    data = _object_body(body)
    secret = data.get("client_secret") or data.get("token") or query.get("token")
    if not isinstance(secret, str) or not secret.strip(ASCII_SPACE):
        raise validation_error(
            [{"field": "client_secret", "message": "is required (JSON client_secret or token, or ?token=)"}]
        )
    if len(secret) > MAX_SECRET_LENGTH:
        raise validation_error([{"field": "client_secret", "message": "is too long"}])
    return secret.strip(ASCII_SPACE)


def thread_id(value: str | None, field: str = "thread_id") -> str:
    """A thread id safe to put in an upstream URL."""
    if value is None or not THREAD_ID.match(value):
        raise validation_error([{"field": field, "message": "must be a ChatKit thread id (letters, digits, _ and -)"}])
    return value


def thread_page(query: Mapping[str, str]) -> dict[str, Any]:
    """`limit` (1.., capped at 100), `order` (asc|desc) and `after` for a thread listing."""
    limit = whole_number(query, "limit", DEFAULT_THREADS_PAGE, minimum=1)
    order = query.get("order", "desc")
    if order not in THREAD_ORDERS:
        raise validation_error([{"field": "order", "message": "must be 'asc' or 'desc'"}])
    after = query.get("after")
    return {
        "limit": min(limit, MAX_THREADS_PAGE),
        "order": order,
        "after": thread_id(after, "after") if after is not None else None,
    }
