"""A loopback stand-in for the OpenAI Responses API (`POST /v1/responses`), as chatkit-selfhosted.md §3 describes it.

Tests use the `responses_standin` fixture (tests/selfhosted_support.py); the bench harness starts it as a process:

    python -m tests.responses_standin --port 8091 --delta-delay-ms 500 --deltas 10

It streams the real SSE event sequence (text replies and function calls, from a FIFO script or a default text),
records every request and, for every stream, whether the client read it to the end ("completed") or left first
("abandoned", noticed within about 0.1 s even during a pause), and plays injected faults (HTTP status,
`response.failed`, an `error` event, a cut connection, a hang, slow deltas). Threaded with HTTP/1.1 keep-alive and
chunked streams, so it holds hundreds of concurrent streams.

Usage it reports: `input_tokens` is the number of whitespace-separated words in the request's `instructions` and in
the text of its `input` (a string, or the `content`/`text`/`output`/`arguments` strings of its items);
`output_tokens` is the number of deltas streamed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tests.loopback_server import LoopbackHandler, LoopbackServer, LoopbackStandin

DEFAULT_KEY = "sk-standin-responses"
DEFAULT_TEXT = "Hello from the stand-in."
DEFAULT_DELTAS = 5
FAULT_KINDS = ("status", "failed", "error_event", "cut", "hang", "slow")
# How often a pause checks for stop(); a client leaving wakes the pause at once.
POLL_SLICE = 0.1


@dataclass(frozen=True)
class TextReply:
    """An assistant message with `text`, streamed in `deltas` pieces (None: the stand-in's default count)."""

    text: str
    deltas: int | None = None


@dataclass(frozen=True)
class ToolCallReply:
    """A function call of tool `name` with `arguments` (a JSON string), streamed in `deltas` pieces."""

    name: str
    arguments: str = "{}"
    deltas: int | None = None


Reply = TextReply | ToolCallReply


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received; `at` is its `time.monotonic()` arrival time."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    client_port: int = 0

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class StreamRecord:
    """One streamed answer: "open" while it is written, then "completed" (every frame written, the fault's last one
    included) or "abandoned" (the client closed the connection first). Times are `time.monotonic()`."""

    index: int
    response_id: str
    fault: str | None
    opened_at: float
    state: str = "open"
    ended_at: float | None = None
    frames: int = 0


@dataclass
class Fault:
    """A misbehaviour played instead of the normal answer, for the next `times` requests it applies to.

    "status": HTTP `status` with the API's error body (`message`, `code`, `retry_after` header), streaming or not.
    Streaming requests only: "failed" (`response.failed` with `error={code, message}` after `after_deltas` deltas),
    "error_event" (an `error` frame with `code`, `message`, `param` after `after_deltas` deltas),
    "cut" (close the connection after `after_deltas` deltas), "hang" (headers and `response.created`, then
    nothing for `seconds` or until the client leaves, then close), "slow" (the reply with deltas `seconds` apart).
    """

    kind: str
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    message: str | None = None
    code: str | None = None
    param: str | None = None
    after_deltas: int = 2
    seconds: float = 10.0

    @property
    def streaming_only(self) -> bool:
        return self.kind != "status"


@dataclass
class StandinState:
    """What the stand-in knows: key, default reply, delays, script, faults and the records."""

    api_key: str = DEFAULT_KEY
    text: str = DEFAULT_TEXT
    deltas: int = DEFAULT_DELTAS
    delta_delay: float = 0.0
    first_delay: float = 0.0
    record: bool = True
    script: list[Reply] = field(default_factory=list)
    reply: Callable[[dict[str, Any]], Reply | str | None] | None = None
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    streams: list[StreamRecord] = field(default_factory=list)
    open_streams: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)


class ResponsesStandin(LoopbackStandin):
    """Start with `start()` (or as a context manager); `base_url` is the value for OPENAI_BASE_URL."""

    def __init__(
        self,
        port: int = 0,
        *,
        delta_delay_ms: float = 0,
        first_delay_ms: float = 0,
        deltas: int = DEFAULT_DELTAS,
        text: str = DEFAULT_TEXT,
        record: bool = True,
    ) -> None:
        self.state = StandinState(
            text=text,
            deltas=deltas,
            delta_delay=delta_delay_ms / 1000,
            first_delay=first_delay_ms / 1000,
            record=record,
        )
        super().__init__(port, self.state, _Handler, "responses-standin")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def api_key(self) -> str:
        return self.state.api_key

    # Replies, delays and faults

    @property
    def reply(self) -> Callable[[dict[str, Any]], Reply | str | None] | None:
        return self.state.reply

    @reply.setter
    def reply(self, hook: Callable[[dict[str, Any]], Reply | str | None] | None) -> None:
        """Called with the request body when the script is empty; a str is a text reply, None the default."""
        self.state.reply = hook

    def script_text(self, text: str, *, deltas: int | None = None) -> None:
        """Queue a text reply for the next request (FIFO)."""
        self._script(TextReply(text, deltas))

    def script_tool_call(self, name: str, arguments: str = "{}", *, deltas: int | None = None) -> None:
        """Queue a function call of tool `name` with `arguments` (a JSON string) for the next request (FIFO)."""
        self._script(ToolCallReply(name, arguments, deltas))

    def _script(self, reply: Reply) -> None:
        with self.state.lock:
            self.state.script.append(reply)

    def set_delays(self, *, delta_delay_ms: float | None = None, first_delay_ms: float | None = None) -> None:
        """Change the pause before each delta and before the answer starts, for the requests that follow."""
        if delta_delay_ms is not None:
            self.state.delta_delay = delta_delay_ms / 1000
        if first_delay_ms is not None:
            self.state.first_delay = first_delay_ms / 1000

    def inject(self, kind: str, times: int = 1, **options: Any) -> None:
        """Queue a fault for the next `times` requests it applies to (see `Fault`)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.state.lock:
            self.state.faults.append(Fault(kind, times=times, **options))

    # Assertions

    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def streams(self) -> list[StreamRecord]:
        """Snapshots of the stream records, in the order the streams opened."""
        with self.state.lock:
            return [replace(record) for record in self.state.streams]

    @property
    def open_streams(self) -> int:
        """Streams being written right now (counted with or without recording)."""
        with self.state.lock:
            return self.state.open_streams

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Poll (bounded) until at least `count` requests arrived."""
        deadline = time.monotonic() + timeout
        while len(requests := self.requests()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(requests)}")
            time.sleep(0.01)
        return requests

    def wait_for_stream_state(self, index: int, state: str, timeout: float = 5.0) -> StreamRecord:
        """Poll (bounded) until stream `index` exists and is in `state`; returns its snapshot."""
        deadline = time.monotonic() + timeout
        while True:
            streams = self.streams()
            if index < len(streams) and streams[index].state == state:
                return streams[index]
            if time.monotonic() > deadline:
                seen = streams[index].state if index < len(streams) else "not opened"
                raise AssertionError(f"stream {index}: expected {state!r}, it is {seen!r}")
            time.sleep(0.01)


class _ClientGone(Exception):
    """The client closed the connection (or stop() released the stand-in) before the stream ended."""


class _Handler(LoopbackHandler):
    server: LoopbackServer  # serving a StandinState as `.state`

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        if state.record:
            recorded = RecordedRequest(
                method=self.command,
                path=self.path.split("?", 1)[0],
                headers=dict(self.headers.items()),
                body=body,
                at=time.monotonic(),
                client_port=self.client_address[1],
            )
            with state.lock:
                state.requests.append(recorded)
        problem = _problem(state, self.command, self.path.split("?", 1)[0], self.headers, body)
        if problem is not None:
            self._send_json(*problem)
            return
        streaming = body.get("stream") is True
        fault = self._take_fault(streaming)
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send_json(fault.status, _status_error(fault), headers)
            return
        reply = _next_reply(state, body)
        if streaming:
            self._stream(_Answer(state, body, reply), fault)
        else:
            self._send_json(200, _Answer(state, body, reply).final_response())

    def _take_fault(self, streaming: bool) -> Fault | None:
        state = self.server.state
        with state.lock:
            for fault in state.faults:
                if streaming or not fault.streaming_only:
                    fault.times -= 1
                    if fault.times <= 0:
                        state.faults.remove(fault)
                    return fault
        return None

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # Streaming

    def _stream(self, answer: _Answer, fault: Fault | None) -> None:
        state = self.server.state
        record = StreamRecord(
            index=-1, response_id=answer.response_id, fault=fault.kind if fault else None, opened_at=time.monotonic()
        )
        with state.lock:
            state.open_streams += 1
            if state.record:
                record.index = len(state.streams)
                state.streams.append(record)
        self._poller = select.poll()
        self._poller.register(self.connection, select.POLLIN | select.POLLPRI)
        outcome = "abandoned"
        try:
            self._pause(state.first_delay)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self._play(answer, fault, record)
            outcome = "completed"
        except _ClientGone:
            self.close_connection = True
        finally:
            with state.lock:
                state.open_streams -= 1
                record.state, record.ended_at = outcome, time.monotonic()
        if not self.close_connection:
            try:
                self.wfile.write(b"0\r\n\r\n")  # end of the chunked body; the connection stays open
            except OSError:
                self.close_connection = True

    def _play(self, answer: _Answer, fault: Fault | None, record: StreamRecord) -> None:
        frames = answer.frames()
        delta_delay = fault.seconds if fault and fault.kind == "slow" else self.server.state.delta_delay
        if fault and fault.kind == "hang":
            self._send_frame(frames[0], record)
            self._pause(fault.seconds)
            self.close_connection = True
            return
        cut_at = len(frames) - 1  # the final event; a fault replaces it and whatever has not been sent
        if fault and fault.kind in ("failed", "error_event", "cut"):
            cut_at = _fault_position(frames, fault.after_deltas)
        for frame in frames[:cut_at]:
            self._pause(delta_delay if frame["type"].endswith(".delta") else 0)
            self._send_frame(frame, record)
        self._pause(0)  # a client already gone must not count as having read the last frame
        if fault is None or fault.kind == "slow":
            self._send_frame(frames[-1], record)
        elif fault.kind == "failed":
            self._send_frame(answer.failed_event(fault), record)
        elif fault.kind == "error_event":
            self._send_frame(answer.error_event(fault), record)
        else:  # cut: FIN in the middle of the chunked body, like a proxy dropping the stream
            self.close_connection = True

    def _send_frame(self, frame: dict[str, Any], record: StreamRecord) -> None:
        frame = {"type": frame["type"], "sequence_number": record.frames, **frame}
        data = f"event: {frame['type']}\ndata: {json.dumps(frame)}\n\n".encode()
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        except OSError as error:  # BrokenPipe, ConnectionReset: the client left
            raise _ClientGone from error
        record.frames += 1

    def _pause(self, seconds: float) -> None:
        """Wait `seconds` while watching the socket: raise _ClientGone as soon as the client closes it."""
        deadline = time.monotonic() + seconds
        watching = True
        while True:
            remaining = deadline - time.monotonic()
            slice_ms = int(max(0.0, min(remaining, POLL_SLICE)) * 1000)
            if watching:
                if self._poller.poll(slice_ms):
                    if self._client_closed():
                        raise _ClientGone
                    watching = False  # unexpected bytes from the client: wait without watching
            elif slice_ms:
                self.server.state.released.wait(slice_ms / 1000)
            if self.server.state.released.is_set():
                raise _ClientGone
            if remaining <= 0:
                return

    def _client_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


class _Answer:
    """One reply to one request: ids minted once, and the events and objects built from them."""

    def __init__(self, state: StandinState, body: dict[str, Any], reply: Reply) -> None:
        self.body, self.reply = body, reply
        self.response_id = _mint("resp_")
        self.created_at = int(time.time())
        count = reply.deltas if reply.deltas is not None else state.deltas
        if isinstance(reply, TextReply):
            self.item_id = _mint("msg_")
            self.pieces = _split(reply.text, count)
        else:
            self.item_id = _mint("fc_")
            self.call_id = "call_" + uuid.uuid4().hex[:24]
            self.pieces = _split(reply.arguments, count)

    def response(self, status: str, output: list[Any], usage: Any = None, error: Any = None) -> dict[str, Any]:
        tools = self.body.get("tools")
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.body.get("model"),
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": tools if isinstance(tools, list) else [],
            "error": error,
            "incomplete_details": None,
            "instructions": self.body.get("instructions"),
            "metadata": {},
            "temperature": None,
            "top_p": None,
            "usage": usage,
        }

    def item(self, done: bool) -> dict[str, Any]:
        status = "completed" if done else "in_progress"
        if isinstance(self.reply, TextReply):
            content = [_text_part(self.reply.text)] if done else []
            return {"id": self.item_id, "type": "message", "role": "assistant", "status": status, "content": content}
        return {
            "id": self.item_id,
            "type": "function_call",
            "call_id": self.call_id,
            "name": self.reply.name,
            "arguments": self.reply.arguments if done else "",
            "status": status,
        }

    def usage(self) -> dict[str, Any]:
        words = _words(self.body.get("input")) + _words(self.body.get("instructions"))
        return {
            "input_tokens": words,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(self.pieces),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": words + len(self.pieces),
        }

    def final_response(self) -> dict[str, Any]:
        return self.response("completed", [self.item(done=True)], self.usage())

    def frames(self) -> list[dict[str, Any]]:
        """Every event of the answer, without sequence numbers (added as they are sent)."""
        where = {"output_index": 0, "item_id": self.item_id}
        frames: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response("in_progress", [])},
            {"type": "response.in_progress", "response": self.response("in_progress", [])},
            {"type": "response.output_item.added", "output_index": 0, "item": self.item(done=False)},
        ]
        if isinstance(self.reply, TextReply):
            text_where = {**where, "content_index": 0}
            frames.append({"type": "response.content_part.added", **text_where, "part": _text_part("")})
            for piece in self.pieces:
                frames.append({"type": "response.output_text.delta", **text_where, "delta": piece, "logprobs": []})
            text = self.reply.text
            frames.append({"type": "response.output_text.done", **text_where, "text": text, "logprobs": []})
            frames.append({"type": "response.content_part.done", **text_where, "part": _text_part(text)})
        else:
            for piece in self.pieces:
                frames.append({"type": "response.function_call_arguments.delta", **where, "delta": piece})
            arguments, name = self.reply.arguments, self.reply.name
            frames.append(
                {"type": "response.function_call_arguments.done", **where, "arguments": arguments, "name": name}
            )
        frames.append({"type": "response.output_item.done", "output_index": 0, "item": self.item(done=True)})
        frames.append({"type": "response.completed", "response": self.final_response()})
        return frames

    def failed_event(self, fault: Fault) -> dict[str, Any]:
        error = {"code": fault.code or "server_error", "message": fault.message or "The model failed to respond."}
        return {"type": "response.failed", "response": self.response("failed", [], error=error)}

    def error_event(self, fault: Fault) -> dict[str, Any]:
        message = fault.message or "The server had an error while processing your request. Sorry about that!"
        return {"type": "error", "code": fault.code or "server_error", "message": message, "param": fault.param}


_INVALID_JSON = object()


def _mint(prefix: str) -> str:
    # The real ids are a prefix and 50 hex digits; uuid4 makes them unique.
    return prefix + uuid.uuid4().hex + secrets.token_hex(9)


def _split(text: str, count: int) -> list[str]:
    """`text` in `count` pieces of near-equal length (fewer if it is shorter; none if it is empty)."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return [piece for piece in pieces if piece]


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_words(value.get(key)) for key in ("content", "text", "output", "arguments"))
    return 0


def _fault_position(frames: list[dict[str, Any]], after_deltas: int) -> int:
    """Index of the frame a fault replaces: the one after the `after_deltas`-th delta, or the first after them all."""
    seen = 0
    for index, frame in enumerate(frames):
        if frame["type"].endswith(".delta"):
            if seen == after_deltas:
                return index
            seen += 1
        elif seen:
            return index
    return len(frames) - 1


def _next_reply(state: StandinState, body: dict[str, Any]) -> Reply:
    with state.lock:
        if state.script:
            return state.script.pop(0)
        hook = state.reply
    chosen = hook(body) if hook is not None else None
    if isinstance(chosen, str):
        return TextReply(chosen)
    return chosen or TextReply(state.text)


def _error(
    message: str, error_type: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


def _status_error(fault: Fault) -> dict[str, Any]:
    if fault.status == 429:
        message = fault.message or "Rate limit reached for requests. Please try again later."
        return _error(message, "requests", fault.code or "rate_limit_exceeded")
    message = fault.message or "The server had an error while processing your request. Sorry about that!"
    return _error(message, "server_error", fault.code)


def _problem(state: StandinState, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any] | None:
    """The real API's error for a request it would refuse, or None."""
    if headers.get("Authorization") != f"Bearer {state.api_key}":
        # The real message quotes part of the key; a stand-in need not repeat secrets anywhere.
        return 401, _error("Incorrect API key provided.", code="invalid_api_key")
    if path.rstrip("/") != "/v1/responses" or method != "POST":
        return 404, _error(f"Invalid URL ({method} {path})")
    if body is _INVALID_JSON or not isinstance(body, dict):
        return 400, _error("We could not parse the JSON body of your request.")
    if not body.get("model"):
        return 400, _error("Missing required parameter: 'model'.", code="missing_required_parameter", param="model")
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback stand-in for the OpenAI Responses API (tests, benchmarks).")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--delta-delay-ms", type=float, default=0)
    parser.add_argument("--first-delay-ms", type=float, default=0)
    parser.add_argument("--deltas", type=int, default=DEFAULT_DELTAS)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--no-record", action="store_true", help="keep no request or stream log (long benchmark runs)")
    args = parser.parse_args(argv)
    standin = ResponsesStandin(
        args.port,
        delta_delay_ms=args.delta_delay_ms,
        first_delay_ms=args.first_delay_ms,
        deltas=args.deltas,
        text=args.text,
        record=not args.no_record,
    )
    standin.state.api_key = args.api_key
    # The socket listens from the constructor on: a harness may wait for this line or for the port.
    print(f"ready {standin.port}", flush=True)
    try:
        standin._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin._server.server_close()


if __name__ == "__main__":
    main()
