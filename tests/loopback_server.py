"""What both loopback stand-ins (ChatKit API, Responses API) share: a threaded HTTP/1.1 server and handler base."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """One thread per connection, hundreds of connections queued, no traceback for a client that leaves."""

    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that leaves mid-answer (wrk at the end of its run, a test on purpose) is no error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, every method to `_handle()`, no request log of its own."""

    protocol_version = "HTTP/1.1"
    # Headers, body and each SSE frame go out in separate writes; with Nagle on, each waits for the
    # client's delayed ACK (~40 ms on Linux). TCP_NODELAY removes that stall.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the request log is the record

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        raise NotImplementedError
