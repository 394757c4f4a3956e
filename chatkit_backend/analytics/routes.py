"""Analytics routes: the page forwards ChatKit events and its own errors here. Views stay thin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request
from werkzeug.exceptions import HTTPException

from chatkit_backend.analytics import events
from chatkit_backend.analytics.ingest import get_store, received_now
from chatkit_backend.errors import ApiError, get_json_body
from chatkit_backend.identity import peek_user
from chatkit_backend.rate_limits import analytics_event_limit, analytics_limit, client_address, limiter

bp = Blueprint("analytics", __name__, url_prefix="/api")


def _batch_body() -> Any:
    """The batch route's parsed body, parsed once per request (the event limit counts it first)."""
    if "analytics_batch" not in g:
        g.analytics_batch = get_json_body(required=True)
    return g.analytics_batch


def _events_in_request() -> int:
    """What a request costs against the event limit: a batch one per event, any other request one."""
    if request.endpoint != "analytics.track_batch":
        return 1
    try:
        batch = _batch_body()
    except (ApiError, HTTPException):
        return 1  # the view answers it with the error
    limit = current_app.config["SETTINGS"].analytics_max_batch_events
    return len(batch) if isinstance(batch, list) and 0 < len(batch) <= limit else 1


def _user_key() -> str:
    return f"user:{peek_user()}"


# Per address, not per user: analytics never creates an identity, and a dropped cookie must not reset it.
_per_address = limiter.shared_limit(analytics_limit, scope="analytics-address", key_func=client_address)
# Events (what fills the disk), not requests: a 500-event batch counts 500. Per address, and per
# identified user (one token from many addresses).
_events_per_address = limiter.shared_limit(
    analytics_event_limit, scope="analytics-events-address", key_func=client_address, cost=_events_in_request
)
_events_per_user = limiter.shared_limit(
    analytics_event_limit,
    scope="analytics-events-user",
    key_func=_user_key,
    cost=_events_in_request,
    exempt_when=lambda: peek_user() is None,
)


def _single_event() -> dict[str, Any]:
    """The body as one event: size-capped (413) before it is parsed, then required to be an object."""
    limit = current_app.config["SETTINGS"].analytics_max_event_bytes
    events.check_size(None, limit, size=len(request.get_data(cache=True)))
    return events.require_object(get_json_body(required=True))


@bp.post("/analytics/message")
@_per_address
@_events_per_address
@_events_per_user
def track_message():
    """One message event (e.g. ChatKit's response.start / response.end)."""
    get_store().write([("events", events.parse_event("message", _single_event(), received_now()))])
    return {"status": "tracked"}


@bp.post("/analytics/thread-change")
@_per_address
@_events_per_address
@_events_per_user
def track_thread_change():
    """One thread change (ChatKit's thread.change {threadId})."""
    get_store().write([("events", events.parse_event("thread_change", _single_event(), received_now()))])
    return {"status": "tracked"}


@bp.post("/errors")
@_per_address
@_events_per_address
@_events_per_user
def log_error():
    """One frontend error report, scrubbed and grouped by fingerprint."""
    get_store().write([("errors", events.parse_error_report(_single_event(), received_now()))])
    return {"status": "logged"}


@bp.post("/analytics/events")
@_per_address
@_events_per_address
@_events_per_user
def track_batch():
    """A JSON array of typed events. Per-event acceptance: valid ones are stored, the others reported by index."""
    settings = current_app.config["SETTINGS"]
    batch = _batch_body()
    if not isinstance(batch, list):
        raise ApiError("invalid_body", "The body must be a JSON array of events.", 400)
    if len(batch) > settings.analytics_max_batch_events:
        raise ApiError(
            "batch_too_large", f"A batch may hold at most {settings.analytics_max_batch_events} events.", 413
        )
    received = received_now()
    records = []
    rejected = []
    for index, item in enumerate(batch):
        try:
            records.append(events.parse_batch_item(item, received, settings.analytics_max_event_bytes))
        except ApiError as error:
            rejected.append({"index": index, "code": error.code, "message": error.message, "details": error.details})
    if records:
        get_store().write(records)
    return {"status": "tracked", "accepted": len(records), "rejected": rejected}
