"""Wiring for the ingest path: the per-app EventStore and what the server adds to every event."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app, g, request

from chatkit_backend.analytics.events import Received
from chatkit_backend.analytics.models import SCOPE_LENGTH
from chatkit_backend.analytics.spool import Spool
from chatkit_backend.analytics.store import EventStore
from chatkit_backend.db import get_db
from chatkit_backend.identity import peek_user
from chatkit_backend.metrics import EXTENSION_KEY as METRICS_EXTENSION_KEY

EXTENSION_KEY = "chatkit_analytics"
DEFAULT_SPOOL_NAME = "analytics-spool.jsonl"


def get_store() -> EventStore:
    """The current app's EventStore."""
    return current_app.extensions[EXTENSION_KEY]


def id_scope(secret_key: str, user_id: str | None, address: str | None) -> str:
    """Whose client event ids these are: the user, or the address when anonymous, as a keyed hash.

    Keyed with SECRET_KEY so the stored scope does not give the address away (an unkeyed hash of an
    IPv4 address is reversed by trying them all).
    """
    subject = f"user\0{user_id}" if user_id is not None else f"address\0{address or ''}"
    digest = hmac.new(secret_key.encode(), b"chatkit-event-scope\0" + subject.encode(), hashlib.sha256)
    return digest.hexdigest()[:SCOPE_LENGTH]


def received_now() -> Received:
    """Server-side facts about the current request. Reads the identity, never creates one."""
    settings = current_app.config["SETTINGS"]
    agent = request.headers.get("User-Agent")
    user = peek_user()
    address = request.remote_addr if settings.analytics_store_client_address else None
    return Received(
        received_at=datetime.now(UTC),
        user_id=user,
        request_id=g.get("request_id"),
        user_agent=agent[:512] if agent else None,
        client_address=address[:64] if address else None,
        scope=id_scope(settings.secret_key, user, request.remote_addr),
    )


def spool_path(app: Flask) -> Path:
    """CHATKIT_ANALYTICS_SPOOL_PATH, or a file in the instance folder."""
    configured = app.config["SETTINGS"].analytics_spool_path
    return Path(configured) if configured else Path(app.instance_path) / DEFAULT_SPOOL_NAME


def init_app(app: Flask) -> None:
    """Create the store. Nothing starts here: the committer starts in the worker, at its first request."""
    with app.app_context():
        database = get_db()
    store = EventStore(database, Spool(spool_path(app)))
    app.extensions[EXTENSION_KEY] = store
    metrics = app.extensions.get(METRICS_EXTENSION_KEY)
    if metrics is not None:
        metrics.add_gauge(
            "chatkit_analytics_spool_depth",
            "Analytics events waiting in the outage spool.",
            store.spool.pending_records,
        )

    if store.spool.has_pending():
        # Replay at start: the first request of each worker starts the committer, which replays first.
        @app.before_request
        def _replay_at_start() -> None:
            store.start()
