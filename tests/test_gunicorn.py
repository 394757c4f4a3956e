"""The service under the real gunicorn, with the project's own gunicorn.conf.py, on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

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
        "SECRET_KEY": "gunicorn-test-secret",
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


def test_the_worker_class_imports_nothing_of_the_app_into_gunicorns_master():
    # gunicorn's master imports the worker class before forking; workers import the app only after
    # gevent has patched the standard library. Locks or sockets made before that patch would block
    # the whole worker, so the master must not import Flask, SQLAlchemy or requests.
    code = (
        "import sys, chatkit_backend.gunicorn_worker as w; "
        "print(w.JsonErrorGeventWorker.__mro__[1].__name__, "
        "sorted(m for m in ('flask', 'sqlalchemy', 'requests', 'werkzeug') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["GeventWorker", "[]"]
