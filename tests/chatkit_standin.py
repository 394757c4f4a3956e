"""A loopback stand-in for the ChatKit REST API, as `shared/chatkit-api.md` describes it.

Tests use the `chatkit_standin` fixture (tests/conftest.py); the bench harness starts it as a process:

    python -m tests.chatkit_standin --port 8090 --latency-ms 300

It records every request (method, path, query, headers, JSON body), answers with the real API's
status codes and messages, and plays injected faults (status bursts, 429 with Retry-After, HTML
with 200, hangs, slow drips, connection resets). Threaded with HTTP/1.1 keep-alive, so it is not
the bottleneck of a benchmark at a few hundred concurrent connections.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback_server import LoopbackHandler, LoopbackServer, LoopbackStandin

DEFAULT_KEY = "sk-standin-test-key"
DEFAULT_WORKFLOW = "wf_standin"
SESSION_SECONDS_DEFAULT = 600
DRIP_PIECES = 20


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    client_port: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Fault:
    """A misbehaviour played instead of (or on top of) the normal answer, `times` times.

    kind: "status" (answer `status` with an error body, `message` if given), "html" (200 with an
    HTML body), "json" (200 with `body` as JSON),
    "hang" (answer nothing for `seconds`), "drip" (send the normal answer in DRIP_PIECES pieces, `seconds` apart),
    "reset" (send headers and part of the body, then reset the connection).
    """

    kind: str
    status: int = 500
    retry_after: str | None = None
    message: str | None = None
    body: Any = None
    seconds: float = 0.0
    times: int = 1
    path_prefix: str = "/v1/chatkit"


@dataclass
class StandinState:
    """What the stand-in knows: its key, workflows, sessions, threads, faults and the request log."""

    api_key: str = DEFAULT_KEY
    workflows: set[str] = field(default_factory=lambda: {DEFAULT_WORKFLOW})
    organization: str | None = None
    project: str | None = None
    latency: float = 0.0
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    record: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)


class ChatKitStandin(LoopbackStandin):
    """Start with `start()` (or as a context manager); `url` is the value for CHATKIT_API_BASE."""

    def __init__(self, port: int = 0, *, latency_ms: float = 0, record: bool = True) -> None:
        self.state = StandinState(latency=latency_ms / 1000, record=record)
        super().__init__(port, self.state, _Handler, "chatkit-standin")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return self.state.api_key

    @property
    def workflow_id(self) -> str:
        return next(iter(self.state.workflows))

    # Configuration and faults

    def set_latency(self, milliseconds: float) -> None:
        self.state.latency = milliseconds / 1000

    def require_organization(self, organization: str | None, project: str | None = None) -> None:
        """Make the workflows belong to this organization/project: other headers get the real 404."""
        self.state.organization = organization
        self.state.project = project

    def inject(self, kind: str, *, times: int = 1, path_prefix: str = "/v1/chatkit", **options: Any) -> None:
        """Queue a fault for the next `times` matching requests (see `Fault`)."""
        with self.state.lock:
            self.state.faults.append(Fault(kind, times=times, path_prefix=path_prefix, **options))

    def add_thread(self, user: str, *, title: str | None = None, created_at: int | None = None) -> str:
        """Create a thread for `user` and return its id."""
        thread_id = "cthr_" + secrets.token_hex(12)
        with self.state.lock:
            self.state.threads[thread_id] = {
                "id": thread_id,
                "object": "chatkit.thread",
                "created_at": created_at if created_at is not None else int(time.time()),
                "title": title,
                "user": user,
                "status": {"type": "active"},
            }
        return thread_id

    # Assertions

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests whose path is `path` (and method `method`, when given)."""
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def session(self, session_id: str) -> dict[str, Any]:
        with self.state.lock:
            return dict(self.state.sessions[session_id])

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Poll (bounded) until at least `count` requests arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            time.sleep(0.01)
        return self.requests


class _Reset(Exception):
    """Raised inside a handler after the connection was reset on purpose."""


class _Handler(LoopbackHandler):
    server: LoopbackServer  # serving a StandinState as `.state`

    def _handle(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        if state.record:
            recorded = RecordedRequest(
                method=self.command,
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers=dict(self.headers.items()),
                body=body,
                client_port=self.client_address[1],
            )
            with state.lock:
                state.requests.append(recorded)
        if state.latency:
            time.sleep(state.latency)
        fault = self._take_fault(parts.path)
        try:
            if fault is not None and fault.kind != "drip":
                self._play(fault)
                return
            status, payload, headers = _route(
                state, self.command, parts.path, parse_qs(parts.query), self.headers, body
            )
            self._send_json(status, payload, headers, drip=fault.seconds if fault else 0.0)
        except _Reset:
            self.close_connection = True

    def _take_fault(self, path: str) -> Fault | None:
        state = self.server.state
        with state.lock:
            for fault in state.faults:
                if path.startswith(fault.path_prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        state.faults.remove(fault)
                    return fault
        return None

    def _play(self, fault: Fault) -> None:
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            default = {429: "Rate limit reached for requests."}.get(fault.status, "The server had an error.")
            message = fault.message or default
            error_type = "requests" if fault.status == 429 else "server_error"
            self._send_json(fault.status, _error(message, error_type), headers)
        elif fault.kind == "html":
            self._send_raw(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
        elif fault.kind == "json":
            self._send_json(200, fault.body, {})
        elif fault.kind == "hang":
            self.server.state.released.wait(fault.seconds)
            self._send_json(504, _error("Gateway timeout.", "server_error"), {})
        elif fault.kind == "reset":
            data = json.dumps({"id": "cksess_partial", "client_secret": "ek_partial"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) + 100))
            self.end_headers()
            self.wfile.write(data[:10])
            self.wfile.flush()
            # SO_LINGER 0: close() sends RST instead of FIN, like a crashed proxy.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            raise _Reset
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _send_json(self, status: int, payload: Any, headers: dict[str, str], drip: float = 0.0) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers, drip)

    def _send_raw(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None, drip: float = 0.0
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not drip:
            self.wfile.write(data)
            return
        for piece in _chunks(data, max(1, -(-len(data) // DRIP_PIECES))):
            if self.server.state.released.wait(drip):
                return
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:  # the client gave up: that is what a drip test wants
                self.close_connection = True
                return


_INVALID_JSON = object()


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _error(message: str, error_type: str = "invalid_request_error", param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": None}}


Answer = tuple[int, Any, dict[str, str]]


def _route(state: StandinState, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any) -> Answer:
    if headers.get("Authorization") != f"Bearer {state.api_key}":
        return 401, _error("Incorrect API key provided.", "invalid_request_error"), {}
    if headers.get("OpenAI-Beta") != "chatkit_beta=v1":
        return 400, _error("You must provide the 'OpenAI-Beta' header to access the Chatkit API."), {}
    segments = path.strip("/").split("/")
    if segments[:2] != ["v1", "chatkit"]:
        return 404, _error(f"Invalid URL ({method} {path})"), {}
    rest = segments[2:]
    if rest == ["sessions"] and method == "POST":
        return _create_session(state, headers, body)
    if len(rest) == 3 and rest[0] == "sessions" and rest[2] == "cancel" and method == "POST":
        return _cancel_session(state, rest[1])
    if rest == ["threads"] and method == "GET":
        return _list_threads(state, {k: v[-1] for k, v in query.items()})
    if len(rest) == 2 and rest[0] == "threads" and method in ("GET", "DELETE"):
        return _thread(state, method, rest[1])
    return 404, _error(f"Invalid URL ({method} {path})"), {}


def _create_session(state: StandinState, headers: Any, body: Any) -> Answer:
    if body is _INVALID_JSON or not isinstance(body, dict):
        return 400, _error("We could not parse the JSON body of your request."), {}
    for name in ("workflow", "user"):
        if name not in body:
            return 400, _error(f"Missing required parameter: '{name}'.", param=name), {}
    workflow, user = body["workflow"], body["user"]
    if isinstance(workflow, str):
        message = "Invalid type for 'workflow': expected an object, but got a string instead."
        return 400, _error(message, param="workflow"), {}
    if not isinstance(workflow, dict) or "id" not in workflow:
        return 400, _error("Missing required parameter: 'workflow.id'.", param="workflow.id"), {}
    if not isinstance(user, str) or not user:
        return (
            400,
            _error("Invalid 'user': string too short. Expected a string with minimum length 1.", param="user"),
            {},
        )
    problem = _session_options_problem(body, workflow)
    if problem:
        return 400, _error(problem), {}
    org_ok = state.organization is None or headers.get("OpenAI-Organization") in (None, state.organization)
    project_ok = state.project is None or headers.get("OpenAI-Project") in (None, state.project)
    if workflow["id"] not in state.workflows or not (org_ok and project_ok):
        return 404, _error(f"Workflow with id '{workflow['id']}' not found.", param="workflow"), {}
    seconds = (body.get("expires_after") or {}).get("seconds", SESSION_SECONDS_DEFAULT)
    session_id = "cksess_" + secrets.token_hex(16)
    max_requests = (body.get("rate_limits") or {}).get("max_requests_per_1_minute", 10)
    config = body.get("chatkit_configuration") or {}
    session = {
        "id": session_id,
        "object": "chatkit.session",
        "client_secret": "ek_" + secrets.token_urlsafe(24),
        "expires_at": int(time.time()) + int(seconds),
        "status": "active",
        "user": user,
        "workflow": {
            "id": workflow["id"],
            "version": workflow.get("version"),
            "state_variables": workflow.get("state_variables") or {},
            "tracing": workflow.get("tracing") or {"enabled": True},
        },
        "rate_limits": {"max_requests_per_1_minute": max_requests},
        "max_requests_per_1_minute": max_requests,
        "chatkit_configuration": {
            "automatic_thread_titling": config.get("automatic_thread_titling") or {"enabled": True},
            "file_upload": config.get("file_upload") or {"enabled": False, "max_file_size": 512, "max_files": 10},
            "history": config.get("history") or {"enabled": True, "recent_threads": None},
        },
    }
    with state.lock:
        state.sessions[session_id] = session
    return 200, session, {}


def _session_options_problem(body: dict[str, Any], workflow: dict[str, Any]) -> str | None:
    expires = body.get("expires_after")
    if expires is not None:
        seconds = expires.get("seconds") if isinstance(expires, dict) else None
        if expires.get("anchor") != "created_at" or not isinstance(seconds, int) or not 1 <= seconds <= 600:
            return "Invalid 'expires_after': expected {'anchor': 'created_at', 'seconds': 1..600}."
    variables = workflow.get("state_variables")
    if variables is not None:
        if not isinstance(variables, dict) or len(variables) > 64:
            return "Invalid 'workflow.state_variables': expected an object with at most 64 keys."
        for key, value in variables.items():
            if len(key) > 64 or not isinstance(value, str | int | float | bool):
                return f"Invalid 'workflow.state_variables.{key}'."
    limits = body.get("rate_limits")
    if limits is not None:
        value = limits.get("max_requests_per_1_minute") if isinstance(limits, dict) else None
        if not isinstance(value, int) or value < 1:
            return "Invalid 'rate_limits.max_requests_per_1_minute': expected an integer >= 1."
    return None


def _cancel_session(state: StandinState, session_id: str) -> Answer:
    with state.lock:
        session = state.sessions.get(session_id)
        if session is None:
            return 404, _error(f"Chatkit Session with id '{session_id}' not found."), {}
        session["status"] = "cancelled"
        return 200, dict(session), {}


def _list_threads(state: StandinState, query: dict[str, str]) -> Answer:
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return 400, _error("Invalid 'limit': expected an integer from 1 to 100.", param="limit"), {}
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        return 400, _error("Invalid 'order': expected 'asc' or 'desc'.", param="order"), {}
    with state.lock:
        threads = [t for t in state.threads.values() if "user" not in query or t["user"] == query["user"]]
    threads.sort(key=lambda t: (t["created_at"], t["id"]), reverse=order == "desc")
    ids = [t["id"] for t in threads]
    if query.get("after") in ids:
        threads = threads[ids.index(query["after"]) + 1 :]
    elif query.get("before") in ids:
        threads = threads[: ids.index(query["before"])]
    page = threads[:limit]
    return (
        200,
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(threads) > limit,
        },
        {},
    )


def _thread(state: StandinState, method: str, thread_id: str) -> Answer:
    with state.lock:
        thread = state.threads.get(thread_id)
        if thread is None:
            return 404, _error(f"Thread with id '{thread_id}' not found."), {}
        if method == "DELETE":
            del state.threads[thread_id]
            return 200, {"id": thread_id, "object": "chatkit.thread.deleted", "deleted": True}, {}
        return 200, dict(thread), {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback stand-in for the ChatKit API (tests and benchmarks).")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--workflow", default=DEFAULT_WORKFLOW)
    parser.add_argument("--no-record", action="store_true", help="keep no request log (long benchmark runs)")
    args = parser.parse_args(argv)
    standin = ChatKitStandin(args.port, latency_ms=args.latency_ms, record=not args.no_record)
    standin.state.api_key = args.api_key
    standin.state.workflows = {args.workflow}
    print(f"chatkit stand-in on {standin.url} (latency {args.latency_ms:g} ms)", flush=True)
    try:
        standin._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin._server.server_close()


if __name__ == "__main__":
    main()
