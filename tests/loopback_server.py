"""What both loopback stand-ins (ChatKit API, Responses API) share: a threaded HTTP/1.1 server and handler base."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


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


class LoopbackStandin:
    """A stand-in's lifecycle: serve `state` on a loopback port in a daemon thread; start, stop, context manager.

    `state` must have a `released` event: stopping sets it, which ends every pause and hang at once.
    """

    def __init__(self, port: int, state: Any, handler: type[LoopbackHandler], name: str) -> None:
        self.state = state
        self._server = LoopbackServer(("127.0.0.1", port), handler)
        self._server.state = state  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
