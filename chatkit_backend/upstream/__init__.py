"""The one interface to ChatKit. Views reach the client with `get_upstream()`; nothing else talks to OpenAI.

`hosted.HostedChatKit` calls the hosted sessions API (Agent Builder workflows, which shut down on
2026-11-30); a self-hosted mode can implement the same `ChatKitUpstream` protocol beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app

from chatkit_backend.errors import ApiError

EXTENSION_KEY = "chatkit_upstream"

StateValue = str | int | float | bool


@dataclass(frozen=True)
class ChatKitSession:
    """A session ChatKit created; `client_secret` is what the browser needs (never logged, never stored)."""

    id: str
    client_secret: str = field(repr=False)
    expires_at: int
    status: str
    user: str
    workflow_id: str


@dataclass(frozen=True)
class Thread:
    """A ChatKit conversation; `user` is the ChatKit user it belongs to."""

    id: str
    user: str
    created_at: int
    title: str | None
    status: dict[str, Any]


@dataclass(frozen=True)
class ThreadPage:
    """One page of a thread listing."""

    data: list[Thread]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ChatKitUpstream(Protocol):
    """What the session routes need from ChatKit, whoever serves it."""

    def create_session(self, user: str, state_variables: Mapping[str, StateValue] | None = None) -> ChatKitSession:
        """Create a session for `user` with the configured workflow and options."""
        ...

    def cancel_session(self, session_id: str) -> ChatKitSession:
        """Cancel a session; its client secret stops working. Unknown id → `UpstreamNotFound`."""
        ...

    def list_threads(
        self, user: str, *, limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None
    ) -> ThreadPage:
        """The threads of `user` (always filtered: without a user ChatKit lists everyone's)."""
        ...

    def get_thread(self, thread_id: str) -> Thread:
        """One thread. Unknown id → `UpstreamNotFound`."""
        ...

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its items. Unknown id → `UpstreamNotFound`."""
        ...


class UpstreamError(ApiError):
    """ChatKit failed or could not be reached; rendered through the error contract like any ApiError."""


class UpstreamNotFound(UpstreamError):
    """ChatKit answered 404 for a session or thread id."""

    def __init__(self, message: str) -> None:
        super().__init__("not_found", message, 404)


def not_configured() -> UpstreamError:
    if current_app.config["SETTINGS"].self_hosted:
        message = (
            "This server runs its own ChatKit server (CHATKIT_MODE=self_hosted): point ChatKit's api.url at "
            "/api/chatkit. Hosted sessions need CHATKIT_MODE=hosted, OPENAI_API_KEY and CHATKIT_WORKFLOW_ID."
        )
    else:
        message = "ChatKit is not configured on this server: set OPENAI_API_KEY and CHATKIT_WORKFLOW_ID."
    return UpstreamError("not_configured", message, 503)


def get_upstream() -> ChatKitUpstream:
    """The current app's ChatKit client; 503 `not_configured` in self-hosted mode or when a setting is missing."""
    upstream = current_app.extensions.get(EXTENSION_KEY)
    if upstream is None:
        raise not_configured()
    return upstream


def init_app(app: Flask) -> None:
    """Create the process's ChatKit client (one pooled HTTP session) when credentials are configured."""
    from chatkit_backend.upstream.hosted import HostedChatKit

    settings = app.config["SETTINGS"]
    app.extensions[EXTENSION_KEY] = HostedChatKit(settings) if settings.chatkit_configured else None
