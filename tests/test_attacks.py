"""Attacks on the deployed service (issue 15), replayed against real gunicorn: /health must keep answering.

- a 1 MiB batch of error reports whose stacks are the scrubber's worst case (finding 1);
- more slow clients than the worker has connections, each sending headers and one byte of body (finding 6).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.servers import gunicorn, send

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
BODY_TIMEOUT = 2.0
CONNECTIONS = 16


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """One gevent worker, so /health shares its process with the attack; few connections, short body deadline."""
    workdir = tmp_path_factory.mktemp("attacks")
    env = {
        "SECRET_KEY": "attack-test-secret-key-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
        "CHATKIT_ANALYTICS_SPOOL_PATH": str(workdir / "spool.jsonl"),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_WORKER_CONNECTIONS": str(CONNECTIONS),
        "GUNICORN_REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT),
    }
    with gunicorn(env, workdir / "gunicorn.log") as url:
        yield url


class HealthProbe(threading.Thread):
    """Asks /health back to back until stopped; keeps each answer's status and latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.answers = url, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            asked = time.monotonic()
            try:
                status = send(self.url, "GET", "/health", source="127.0.0.2", timeout=30).status
            except OSError:
                status = None
            self.answers.append((status, time.monotonic() - asked))
            self.stop.wait(0.02)

    def worst(self) -> float:
        return max(latency for _, latency in self.answers)


def test_a_batch_of_worst_case_stacks_does_not_stall_the_worker(one_worker):
    # 64 error reports, each a 16,000-character stack of '-' (0.35 s of CPU each before the fix:
    # 22 s in all, during which /health did not answer).
    batch = [{"type": "error", "id": f"dash-{i}", "message": "boom", "stack": "-" * 16_000} for i in range(64)]
    body = json.dumps(batch).encode()
    assert len(body) > 1_000_000
    probe = HealthProbe(one_worker)
    probe.start()
    try:
        started = time.monotonic()
        answer = send(one_worker, "POST", "/api/analytics/events", body=body, headers=JSON, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        probe.stop.set()
        probe.join(timeout=35)
    assert answer.status == 200, answer.body
    assert answer.json()["accepted"] == 64
    assert elapsed < 5, f"the batch took {elapsed:.2f} s"
    assert probe.answers
    assert all(status == 200 for status, _ in probe.answers)
    # Scrubbing 1 MiB is ~0.3 s of CPU in one greenlet (linear); on a loaded 2-core machine /health
    # waited 0.3-0.65 s behind it, against the whole batch (> 20 s) before.
    assert probe.worst() < 1.5, f"/health took up to {probe.worst():.2f} s during the batch"


def _slow_client(url: str) -> socket.socket:
    """Headers of a 1,000-byte analytics post, then one byte of its body: then nothing."""
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=30)
    client.sendall(
        b"POST /api/analytics/message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    return client


def _answer_of(client: socket.socket) -> bytes:
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_do_not_hold_the_worker_forever(one_worker):
    # More slow clients than the worker has connections: before the fix they held all of them
    # until they gave up, and /health waited as long.
    clients = [_slow_client(one_worker) for _ in range(CONNECTIONS + 4)]
    try:
        asked = time.monotonic()
        health = send(one_worker, "GET", "/health", timeout=3 * BODY_TIMEOUT + 5)
        waited = time.monotonic() - asked
        assert health.status == 200
        # Cut at the body deadline, all of them, each with the error contract's 408.
        answers = [_answer_of(client) for client in clients]
    finally:
        for client in clients:
            client.close()
    assert waited < 2 * BODY_TIMEOUT + 2, f"/health waited {waited:.2f} s"
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), head
        assert json.loads(body)["error"]["code"] == "request_timeout"
