"""The service under the real gunicorn, with the project's own gunicorn.conf.py, on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}: {process.stderr.read()}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer {url} within {seconds} s")


@pytest.fixture
def gunicorn_server(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHATKIT_", "OPENAI_"))},
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "4",
        "SECRET_KEY": "gunicorn-test-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}",
        "OPENAI_API_KEY": "sk-test",
        "CHATKIT_WORKFLOW_ID": "wf_test",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/health", process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()


def test_gunicorn_serves_health_and_ready(gunicorn_server):
    assert get(gunicorn_server + "/health") == (200, {"status": "healthy"})
    status, body = get(gunicorn_server + "/ready")
    assert status == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True


def test_gunicorn_errors_are_json(gunicorn_server):
    status, body = get(gunicorn_server + "/does-not-exist")
    assert status == 404
    assert body["error"]["code"] == "not_found"
