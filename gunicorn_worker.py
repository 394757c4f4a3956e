"""gunicorn's gevent worker, answering requests gunicorn itself cannot parse with the JSON error contract.

gunicorn writes its own HTML page for a request line or header it refuses (too long, malformed)
before the app ever sees it. This worker makes those answers the app's contract instead, without
echoing any part of the refused request (it may hold a cookie or a token).
"""

from __future__ import annotations

import json

import gevent
from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

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


class JsonErrorGeventWorker(GeventWorker):
    """gevent, with gunicorn's own error pages in JSON, and keep-alive connections served in turn."""

    def init_process(self) -> None:
        # gunicorn's base worker calls util.write_error by module attribute; this process only runs this worker.
        util.write_error = write_json_error
        super().init_process()

    def handle_request(self, listener_name, req, sock, addr):
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            # gevent switches greenlets only where one would block. A keep-alive client whose next
            # request has already arrived would be served again and again while this worker's
            # other connections wait (seconds, under load). Yielding after each request serves
            # the ready connections in turn.
            gevent.sleep(0)
