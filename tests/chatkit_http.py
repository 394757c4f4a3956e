"""A ChatKit client over real HTTP (http.client) for tests against gunicorn and nginx: events with arrival times."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.selfhosted_support import new_message


@dataclass
class StreamedAnswer:
    """What a client saw of one `POST /api/chatkit`: status, events with arrival times, or how it failed."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    body: bytes = b""
    transport_error: str | None = None

    @property
    def cookie(self) -> str | None:
        """The identity cookie the answer set (`name=value`), to send back as the same user."""
        value = self.headers.get("set-cookie")
        return value.split(";", 1)[0] if value else None

    @property
    def thread_id(self) -> str | None:
        return next((e["thread"]["id"] for e in self.events if e["type"] == "thread.created"), None)

    @property
    def done_items(self) -> list[dict[str, Any]]:
        """The items ChatKit reported done: it stores each one before it says so."""
        return [e["item"] for e in self.events if e["type"] == "thread.item.done"]

    @property
    def outcome(self) -> str:
        """ "answer" (an assistant message, no error), "error" (ChatKit's error event last), or what went wrong."""
        if self.transport_error:
            return f"transport error: {self.transport_error}"
        if self.status != 200:
            return f"status {self.status}"
        if not self.events:
            return "no events"
        if self.events[-1]["type"] == "error":
            return "error"
        if any(item["type"] == "assistant_message" for item in self.done_items):
            return "answer"
        return f"ended after {self.events[-1]['type']}"


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    host, _, port = url.removeprefix("http://").partition(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def open_stream(
    url: str,
    kind: str,
    params: dict[str, Any],
    *,
    cookie: str | None = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send one ChatKit operation and return the connection and the response, its body unread."""
    connection = _connection(url, timeout)
    headers = {"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {}), **(headers or {})}
    connection.request("POST", "/api/chatkit", body=json.dumps({"type": kind, "params": params}), headers=headers)
    return connection, connection.getresponse()


def read_events(response: http.client.HTTPResponse) -> Iterator[tuple[float, dict[str, Any]]]:
    """The `data:` events of an SSE body as they arrive, each with its `time.monotonic()` arrival time."""
    buffer = b""
    while chunk := response.read1(65536):
        buffer += chunk
        arrived = time.monotonic()
        *frames, buffer = buffer.split(b"\n\n")
        for frame in frames:
            if frame.startswith(b"data: "):
                yield arrived, json.loads(frame[len(b"data: ") :])


def chatkit_stream(
    url: str,
    kind: str,
    params: dict[str, Any],
    *,
    cookie: str | None = None,
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> StreamedAnswer:
    """One streaming operation read to its end; connection failures are recorded, not raised."""
    answer = StreamedAnswer(started=time.monotonic())
    connection = None
    try:
        connection, response = open_stream(url, kind, params, cookie=cookie, timeout=timeout, headers=headers)
        answer.status = response.status
        answer.headers = {name.lower(): value for name, value in response.getheaders()}
        if response.status != 200 or not answer.headers.get("content-type", "").startswith("text/event-stream"):
            answer.body = response.read()
        else:
            for arrived, event in read_events(response):
                answer.times.append(arrived)
                answer.events.append(event)
    except (OSError, http.client.HTTPException) as error:
        answer.transport_error = f"{type(error).__name__}: {error}"
    finally:
        answer.ended = time.monotonic()
        if connection is not None:
            connection.close()
    return answer


def start_thread(url: str, text: str, **options: Any) -> StreamedAnswer:
    """`threads.create` with a user message of `text`, read to its end (`options` as for chatkit_stream)."""
    return chatkit_stream(url, "threads.create", {"input": new_message(text)}, **options)


def add_message(url: str, thread_id: str, text: str, **options: Any) -> StreamedAnswer:
    """`threads.add_user_message` of `text` to `thread_id`, read to its end."""
    params = {"thread_id": thread_id, "input": new_message(text)}
    return chatkit_stream(url, "threads.add_user_message", params, **options)


def chatkit_json(url: str, kind: str, params: dict[str, Any], *, cookie: str | None = None) -> tuple[int, Any]:
    """One JSON operation (e.g. `items.list`): its status and parsed body."""
    connection, response = open_stream(url, kind, params, cookie=cookie, timeout=10)
    try:
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def thread_items(url: str, thread_id: str, cookie: str) -> list[dict[str, Any]]:
    """Every visible item of a thread, oldest first (asserts the read succeeds)."""
    params = {"thread_id": thread_id, "limit": 100, "order": "asc"}
    status, body = chatkit_json(url, "items.list", params, cookie=cookie)
    assert status == 200, body
    return body["data"]
