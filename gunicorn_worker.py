"""gunicorn's gevent worker, answering requests gunicorn itself cannot parse with the JSON error contract.

gunicorn writes its own HTML page for a request line or header it refuses (too long, malformed)
before the app ever sees it. This worker makes those answers the app's contract instead, without
echoing any part of the refused request (it may hold a cookie or a token).

It also bounds how long a client may take to send a request body: gunicorn bounds the wait for
headers (its `keepalive` timeout) but not for the body, so clients that send headers and then a
byte now and then would hold connections, and with them the worker's `worker_connections`, forever.
"""

from __future__ import annotations

import json
import time
from typing import Any

import gevent
from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

# Seconds a client has to send the whole body after its headers (gunicorn.conf.py may change it).
REQUEST_BODY_TIMEOUT = 10.0

# gunicorn's statuses for refused requests, mapped onto the contract's codes.
_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for gunicorn.util.write_error: the same status, a JSON error-contract body."""
    body = json.dumps(
        {
            "error": {
                "code": _CODES.get(status_int, "bad_request"),
                "message": f"{reason}: the server could not accept this request.",
                "request_id": None,
            }
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


class BodyWithDeadline:
    """A request body whose reads fail with 408 once `seconds` have passed since the headers arrived."""

    def __init__(self, req: Any, seconds: float) -> None:
        self._req = req
        self._body = req.body
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def restart(self) -> None:
        """A new deadline from now, for draining what the app left of the body once its answer is sent.

        The deadline is for receiving the request: an answer that streams for longer (a ChatKit turn)
        must not turn the keep-alive drain into a 408 and a dropped connection.
        """
        self._deadline = time.monotonic() + self._seconds

    def read(self, size: int | None = None) -> bytes:
        return self._within(self._body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._within(self._body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._within(self._body.readlines, size)

    def __iter__(self) -> BodyWithDeadline:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _within(self, read: Any, size: int | None) -> Any:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._expired()
        timeout = gevent.Timeout(remaining)
        timeout.start()
        try:
            return read(size)
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._expired()
        finally:
            timeout.close()

    def _expired(self) -> None:
        # The rest of the body may still be on its way: the connection cannot serve another request.
        self._req.must_close = True
        # Imported here: gunicorn's master imports this module and must not load the app's libraries.
        from werkzeug.exceptions import RequestTimeout

        raise RequestTimeout()


class JsonErrorGeventWorker(GeventWorker):
    """gevent, with gunicorn's own error pages in JSON, request bodies on a deadline, and keep-alive
    connections served in turn."""

    request_body_timeout = REQUEST_BODY_TIMEOUT

    def init_process(self) -> None:
        # gunicorn's base worker calls util.write_error by module attribute; this process only runs this worker.
        util.write_error = write_json_error
        super().init_process()

    def handle_request(self, listener_name, req, sock, addr):
        req.body = body = BodyWithDeadline(req, self.request_body_timeout)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            body.restart()
            # gevent switches greenlets only where one would block. A keep-alive client whose next
            # request has already arrived would be served again and again while this worker's
            # other connections wait (seconds, under load). Yielding after each request serves
            # the ready connections in turn.
            gevent.sleep(0)
