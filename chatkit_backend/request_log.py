"""Request ids and JSON logs: one object per line on stderr, with the request id on every line."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from chatkit_backend import log_format

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

access_log = logging.getLogger("chatkit_backend.access")


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record (test capture swaps it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class RequestContextFilter(logging.Filter):
    """Adds the current request id (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


def configure_logging(level: str) -> None:
    """Send every log line to stderr as JSON (log_format.py), written in the logging call; set once per process."""
    root = logging.getLogger()
    root.setLevel(level)
    # Alembic announces every plugin at INFO on each start; only its warnings are worth a line.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if any(isinstance(handler, StderrHandler) for handler in root.handlers):
        return  # tests build many apps in one process
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter(log_format.FORMAT, rename_fields=log_format.RENAME_FIELDS))
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)


def _start_request() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    started = g.get("started")
    access_log.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "user": g.get("log_user"),
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Assign a request id before anything else runs and log one access line per response."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
