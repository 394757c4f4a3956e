"""A streaming load generator for ChatKit servers (and the Responses API stand-in), run as its own process.

    python -m bench.chatkit_load turns   --url http://127.0.0.1:P/api/chatkit --clients 32 --duration 10
    python -m bench.chatkit_load ttft    --url http://127.0.0.1:P/chatkit --turns 200
    python -m bench.chatkit_load streams --url http://127.0.0.1:P/api/chatkit --count 1000
    python -m bench.chatkit_load probe   --url http://127.0.0.1:P/health --interval-ms 50

Raw asyncio streams and HTTP/1.1 (keep-alive, chunked answers), so every SSE frame is timed as it
arrives and nothing but the standard library runs in the client. Each command prints one JSON line.
A URL whose path is `/v1/responses` is the stand-in itself: the turn is one streamed model call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# The first text of an answer: ChatKit's text delta update, or the Responses API's own delta event.
CHATKIT_TEXT = b'"assistant_message.content_part.text_delta"'
RESPONSES_TEXT = b"response.output_text.delta"
STANDIN_KEY = "sk-standin-responses"
TURNS_PER_THREAD = 10
READ_LIMIT = 1 << 20


class ProtocolError(Exception):
    pass


@dataclass
class Answer:
    """One HTTP answer: status, when its first text frame and its end arrived (perf_counter seconds)."""

    status: int
    started: float
    first_text: float | None = None
    ended: float | None = None
    frames: int = 0
    error_frame: bool = False
    first_frame: bytes = b""
    cookie: str | None = None
    keep_alive: bool = True


@dataclass
class Target:
    host: str
    port: int
    path: str

    @property
    def standin(self) -> bool:
        return self.path.rstrip("/").endswith("/v1/responses")

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"refusing a non-loopback address: {url}")
        return cls(parts.hostname, parts.port or 80, parts.path or "/")


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened when the server closes it."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port, limit=READ_LIMIT)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, body: bytes | None, headers: dict[str, str], text_marker: bytes | None = None
    ) -> Answer:
        if self.writer is None:
            await self._open()
        assert self.reader is not None
        assert self.writer is not None
        lines = [f"{method} {self.target.path} HTTP/1.1", f"Host: {self.target.host}:{self.target.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        answer = Answer(status=0, started=time.perf_counter())
        self.writer.write(head + (body or b""))
        try:
            await self._read_answer(answer, text_marker)
        except BaseException:
            self.close()
            raise
        if not answer.keep_alive:
            self.close()
        return answer

    async def _read_answer(self, answer: Answer, marker: bytes | None) -> None:
        reader = self.reader
        assert reader is not None
        status_line = await reader.readline()
        if not status_line:
            raise ProtocolError("connection closed before an answer")
        answer.status = int(status_line.split()[1])
        length, chunked = None, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                answer.keep_alive = False
            elif name == "set-cookie":
                answer.cookie = value.split(";", 1)[0]
        frames = _Frames(answer, marker)
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    break
                frames.feed(await reader.readexactly(size))
                await reader.readexactly(2)
        elif length is not None:
            frames.feed(await reader.readexactly(length))
        else:
            answer.keep_alive = False
            while chunk := await reader.read(65536):
                frames.feed(chunk)
        frames.end()
        answer.ended = time.perf_counter()


class _Frames:
    """Splits a body into SSE frames as it arrives, noting the first text frame's time."""

    def __init__(self, answer: Answer, marker: bytes | None) -> None:
        self.answer = answer
        self.marker = marker
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while b"\n\n" in self.buffer:
            frame, self.buffer = self.buffer.split(b"\n\n", 1)
            self._frame(frame)

    def end(self) -> None:
        if self.buffer.strip():
            self._frame(self.buffer)
        self.buffer = b""

    def _frame(self, frame: bytes) -> None:
        answer = self.answer
        if not answer.frames:
            answer.first_frame = frame
        answer.frames += 1
        if self.marker is not None and answer.first_text is None and self.marker in frame:
            answer.first_text = time.perf_counter()
        if frame.startswith(b'data: {"type":"error"') or b"event: error" in frame or b"response.failed" in frame:
            answer.error_frame = True


@dataclass
class Turn:
    ok: bool
    seconds: float
    ttft: float | None
    status: int
    detail: str = ""


@dataclass
class Conversation:
    """One simulated user: a thread of up to TURNS_PER_THREAD turns, then a new thread (same identity)."""

    target: Target
    turns_per_thread: int = TURNS_PER_THREAD
    thread_id: str | None = None
    turns_in_thread: int = 0
    cookie: str | None = None
    connection: Connection = field(init=False)

    def __post_init__(self) -> None:
        self.connection = Connection(self.target)

    def _body(self, n: int) -> bytes:
        text = f"Hello, turn {n}: tell me something short."
        if self.target.standin:
            return json.dumps({"model": "gpt-4.1-mini", "input": text, "stream": True}).encode()
        message = {"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}}
        if self.thread_id is None:
            return json.dumps({"type": "threads.create", "params": {"input": message}}).encode()
        params = {"thread_id": self.thread_id, "input": message}
        return json.dumps({"type": "threads.add_user_message", "params": params}).encode()

    async def turn(self, n: int) -> Turn:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.target.standin:
            headers["Authorization"] = f"Bearer {STANDIN_KEY}"
        if self.cookie:
            headers["Cookie"] = self.cookie
        marker = RESPONSES_TEXT if self.target.standin else CHATKIT_TEXT
        started = time.perf_counter()
        try:
            answer = await self.connection.request("POST", self._body(n), headers, marker)
        except (OSError, ProtocolError, asyncio.IncompleteReadError, ValueError) as error:
            return Turn(False, time.perf_counter() - started, None, 0, f"{type(error).__name__}: {error}")
        if answer.cookie:
            self.cookie = answer.cookie
        seconds = (answer.ended or time.perf_counter()) - answer.started
        ttft = answer.first_text - answer.started if answer.first_text else None
        ok = answer.status == 200 and ttft is not None and not answer.error_frame
        if ok and not self.target.standin:
            if self.thread_id is None:
                self.thread_id = _thread_id(answer.first_frame)
                self.turns_in_thread = 0
            self.turns_in_thread += 1
            if self.turns_in_thread >= self.turns_per_thread:
                self.thread_id = None
        detail = "" if ok else f"status {answer.status}, {answer.frames} frames, error frame: {answer.error_frame}"
        return Turn(ok, seconds, ttft, answer.status, detail)


def _thread_id(frame: bytes) -> str | None:
    try:
        event = json.loads(frame.split(b"data: ", 1)[1])
    except (IndexError, ValueError):
        return None
    return event.get("thread", {}).get("id") if event.get("type") == "thread.created" else None


def _ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def _summary(turns: list[Turn], elapsed: float) -> dict[str, Any]:
    good = [t for t in turns if t.ok]
    failures: dict[str, int] = {}
    for t in turns:
        if not t.ok:
            failures[t.detail] = failures.get(t.detail, 0) + 1
    ttfts = [t.ttft for t in good if t.ttft is not None]
    return {
        "turns": len(turns),
        "ok": len(good),
        "failed": len(turns) - len(good),
        "failures": dict(sorted(failures.items(), key=lambda kv: -kv[1])[:5]),
        "elapsed_s": round(elapsed, 3),
        "turns_per_s": round(len(good) / elapsed, 2) if elapsed else None,
        "turn_p50_ms": _ms([t.seconds for t in good], 0.5),
        "turn_p99_ms": _ms([t.seconds for t in good], 0.99),
        "ttft_p50_ms": _ms(ttfts, 0.5),
        "ttft_p99_ms": _ms(ttfts, 0.99),
        "ttft_mean_ms": round(statistics.fmean(ttfts) * 1000, 2) if ttfts else None,
    }


async def run_turns(target: Target, clients: int, duration: float) -> dict[str, Any]:
    """`clients` users, each sending its next turn as soon as the last one ended, for `duration` seconds."""
    turns: list[Turn] = []
    deadline = time.perf_counter() + duration

    async def user() -> None:
        conversation = Conversation(target)
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            turns.append(await conversation.turn(n))
        conversation.connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(clients)))
    return {"clients": clients, **_summary(turns, time.perf_counter() - started)}


async def run_ttft(target: Target, count: int) -> dict[str, Any]:
    """One user, `count` turns one after the other: time to the first text event of each."""
    conversation = Conversation(target)
    turns = [await conversation.turn(n) for n in range(count)]
    conversation.connection.close()
    return {"clients": 1, **_summary(turns, sum(t.seconds for t in turns))}


async def run_streams(target: Target, count: int, ramp_s: float) -> dict[str, Any]:
    """`count` conversations opened within `ramp_s` seconds, each its own connection, all open at once."""
    turns: list[Turn] = []

    async def one(i: int) -> None:
        await asyncio.sleep(ramp_s * i / count)
        conversation = Conversation(target)
        turns.append(await conversation.turn(i))
        conversation.connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    summary = _summary(turns, time.perf_counter() - started)
    return {"streams": count, "ramp_s": ramp_s, "completed": summary["ok"], **summary}


async def run_probe(target: Target, interval: float, max_seconds: float) -> dict[str, Any]:
    """GET the URL on a fresh connection every `interval` s until SIGTERM (or `max_seconds`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    times: list[float] = []
    failed = 0
    deadline = time.perf_counter() + max_seconds
    print("probing", flush=True)
    while not stop.is_set() and time.perf_counter() < deadline:
        tick = time.perf_counter()
        connection = Connection(target)
        try:
            answer = await asyncio.wait_for(connection.request("GET", None, {"Connection": "close"}), 10)
            if answer.status == 200:
                times.append((answer.ended or time.perf_counter()) - tick)
            else:
                failed += 1
        except (OSError, ProtocolError, asyncio.IncompleteReadError, TimeoutError):
            failed += 1
        finally:
            connection.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, interval - (time.perf_counter() - tick)))
    return {
        "probes": len(times) + failed,
        "failed": failed,
        "p50_ms": _ms(times, 0.5),
        "p99_ms": _ms(times, 0.99),
        "max_ms": round(max(times) * 1000, 2) if times else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chatkit_load", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    turns = sub.add_parser("turns", help="turns per second with N clients")
    turns.add_argument("--clients", type=int, default=32)
    turns.add_argument("--duration", type=float, default=10)
    ttft = sub.add_parser("ttft", help="time to first text event, one client")
    ttft.add_argument("--turns", type=int, default=200)
    streams = sub.add_parser("streams", help="N concurrent streams")
    streams.add_argument("--count", type=int, default=1000)
    streams.add_argument("--ramp", type=float, default=1.0, help="seconds over which the streams are opened")
    probe = sub.add_parser("probe", help="time GET requests until SIGTERM")
    probe.add_argument("--interval-ms", type=float, default=50)
    probe.add_argument("--max-seconds", type=float, default=300)
    for command in (turns, ttft, streams, probe):
        command.add_argument("--url", required=True)
    args = parser.parse_args(argv)
    target = Target.parse(args.url)
    if args.command == "turns":
        result = asyncio.run(run_turns(target, args.clients, args.duration))
    elif args.command == "ttft":
        result = asyncio.run(run_ttft(target, args.turns))
    elif args.command == "streams":
        result = asyncio.run(run_streams(target, args.count, args.ramp))
    else:
        result = asyncio.run(run_probe(target, args.interval_ms / 1000, args.max_seconds))
    print("BENCH_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
