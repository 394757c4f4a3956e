"""The service under the real gunicorn, with the project's own gunicorn.conf.py, on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from chatkit_backend import log_format
from tests.servers import ROOT, gunicorn

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    env = {
        "SECRET_KEY": "gunicorn-test-secret-key-of-32-characters",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "OPENAI_API_KEY": "sk-test",
        "CHATKIT_WORKFLOW_ID": "wf_test",
    }
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(env, log_path) as url:
        yield url, log_path


def test_gunicorn_serves_health_and_ready(gunicorn_server):
    url, _ = gunicorn_server
    assert get(url + "/health") == (200, {"status": "healthy"})
    status, body = get(url + "/ready")
    assert status == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True


def test_gunicorn_errors_are_json(gunicorn_server):
    url, _ = gunicorn_server
    status, body = get(url + "/does-not-exist")
    assert status == 404
    assert body["error"]["code"] == "not_found"


def test_memory_rate_limits_with_several_workers_warn_once(gunicorn_server):
    _, log_path = gunicorn_server
    warnings = [line for line in log_path.read_text().splitlines() if "each worker counts its own limits" in line]
    assert len(warnings) == 1
    assert json.loads(warnings[0])["level"] == "WARNING"


def test_gunicorns_master_imports_nothing_of_the_app():
    # gunicorn's master reads gunicorn.conf.py and imports the worker class before forking; workers
    # import the app only after gevent has patched the standard library. Locks or sockets made
    # before that patch would block the whole worker, so the master must not import Flask,
    # SQLAlchemy, requests or the package.
    code = (
        "import runpy, sys, gunicorn_worker as w; config = runpy.run_path('gunicorn.conf.py'); "
        "print(w.JsonErrorGeventWorker.__mro__[1].__name__, config['logconfig_dict']['formatters']['json']['fmt'], "
        "sorted(m for m in ('flask', 'sqlalchemy', 'requests', 'werkzeug', 'chatkit_backend') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["GeventWorker", *log_format.FORMAT.split(), "[]"]


def test_a_keep_alive_client_with_requests_waiting_does_not_starve_another(tmp_path):
    # gevent switches only where a greenlet would block: a connection whose next requests are
    # already buffered would be served to the end before any other connection of the worker.
    env = {
        "SECRET_KEY": "gunicorn-test-secret-key-of-32-characters",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "warning",
    }
    pipelined = 400
    with gunicorn(env, tmp_path / "gunicorn.log") as url:
        host, port = url.removeprefix("http://").split(":")
        request = f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        answered_before_other: list[int] = []
        busy = socket.create_connection((host, int(port)), timeout=10)
        other = socket.create_connection((host, int(port)), timeout=10)
        counted = threading.Event()
        first_answer = threading.Event()
        other_answered = threading.Event()

        def read_busy() -> None:
            received = b""
            while received.count(b"HTTP/1.1 200") < pipelined:
                chunk = busy.recv(65536)
                if not chunk:
                    break
                received += chunk
                first_answer.set()
                if other_answered.is_set() and not counted.is_set():
                    answered_before_other.append(received.count(b"HTTP/1.1 200"))
                    counted.set()

        reader = threading.Thread(target=read_busy)
        reader.start()
        try:
            busy.sendall(request)  # one request first, so its greenlet is serving when the rest arrive
            assert first_answer.wait(10)
            busy.sendall(request * (pipelined - 1))
            other.sendall(request)
            assert b"HTTP/1.1 200" in other.recv(65536)
            other_answered.set()
            reader.join(30)
        finally:
            busy.close()
            other.close()
    # No chunk after the other client's answer: every pipelined request was answered before it.
    answered = answered_before_other[0] if answered_before_other else pipelined
    # Served in turn, the other client is answered after a handful of the pipelined requests.
    assert answered < pipelined // 2, f"{answered} of {pipelined} pipelined requests went first"
