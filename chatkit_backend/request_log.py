"""Request ids and JSON logs: one object per line on stderr, with the request id on every line.

Lines are formatted and written by a listener thread (`logging.handlers.QueueListener`), so a
request thread only queues its record and never waits on the handler's lock or on stderr.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

access_log = logging.getLogger("chatkit_backend.access")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record (test capture swaps it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _Flush:
    """Put on the log queue by `flush_logs`: set once every record queued before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


class _Listener(logging.handlers.QueueListener):
    def handle(self, record) -> None:  # type: ignore[override]
        if isinstance(record, _Flush):
            record.done.set()
            return
        super().handle(record)


class _BackgroundHandler(logging.handlers.QueueHandler):
    """Hands records to a listener thread that formats and writes them: no request thread waits on stderr.

    The listener is started lazily in each process (threads do not survive fork(), and a queue
    inherited from another process is nobody's), stopped at exit after writing what is queued;
    records emitted after that are written synchronously.
    """

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(queue.SimpleQueue())
        self.target = target
        self._lock_start = threading.Lock()
        self._listener: _Listener | None = None
        self._pid = 0
        self._stopped = False

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Merge the arguments now (they may change after the call); keep exc_info, which the
        # listener's JSON formatter renders as today. No copy: other handlers see the same text.
        record.message = record.getMessage()
        record.msg, record.args = record.message, None
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if self._pid != os.getpid():
            self._start()
        if self._stopped:
            self.target.handle(record)
            return
        super().emit(record)

    def _start(self) -> None:
        with self._lock_start:
            if self._pid == os.getpid():
                return
            self.queue = queue.SimpleQueue()
            self._listener = _Listener(self.queue, self.target, respect_handler_level=True)
            self._listener.start()
            self._stopped = False
            self._pid = os.getpid()

    def flush(self) -> None:
        """Wait (up to 5 s) until every record queued so far is written."""
        if self._pid != os.getpid() or self._stopped:
            return
        marker = _Flush()
        self.queue.put_nowait(marker)
        marker.done.wait(5)

    def stop(self) -> None:
        """Write what is queued and end the listener; later records are written synchronously."""
        with self._lock_start:
            if self._listener is not None and self._pid == os.getpid() and not self._stopped:
                self._stopped = True
                self._listener.stop()


def flush_logs() -> None:
    """Write every log record queued so far (tests read stderr after this)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _BackgroundHandler):
            handler.flush()


class RequestContextFilter(logging.Filter):
    """Adds the current request id (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


def configure_logging(level: str) -> None:
    """Send every log line to stderr as JSON. Idempotent: a second call replaces nothing."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_chatkit_json", False) for h in root.handlers):
        return
    writer = _StderrHandler()
    writer.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "asctime": "time"},
        )
    )
    # Formatting and writing happen on the listener thread; the request id is read here, in the
    # thread that logs (it lives in the request context).
    handler = _BackgroundHandler(writer)
    handler.addFilter(RequestContextFilter())
    handler._chatkit_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    atexit.register(handler.stop)
    # Alembic announces every plugin at INFO on each start; only its warnings are worth a line.
    logging.getLogger("alembic").setLevel(logging.WARNING)


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
