"""Real server processes for integration tests: gunicorn with the project's config, nginx in front."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import IN_CI, free_port

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    """Poll `url` until it answers, failing early if `process` exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answered, with an error status: it is up
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Run `gunicorn wsgi:app` from the project root with `env` on top of a clean environment."""
    port = free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATKIT_", "OPENAI_"))}
    full_env = {"HOST": "127.0.0.1", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", **base_env, **env}
    full_env["PORT"] = str(port)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app"], cwd=ROOT, env=full_env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/health", process)
        yield url
    finally:
        _stop(process)


def require_nginx() -> str:
    if NGINX is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return NGINX


@contextmanager
def nginx(app_url: str, workdir: Path) -> Iterator[str]:
    """Run Debian's nginx on a loopback port with deploy/nginx.conf, proxying to `app_url`."""
    binary = require_nginx()
    port = free_port()
    template = (ROOT / "deploy" / "nginx.conf").read_text()
    site = template.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = re.sub(r"server 127\.0\.0\.1:8000;", f"server {app_url.removeprefix('http://')};", site)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "site.conf").write_text(site)
    temp = workdir / "tmp"
    temp.mkdir(exist_ok=True)
    (workdir / "nginx.conf").write_text(
        f"""
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {workdir / "site.conf"};
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/health", process)
        yield url
    finally:
        _stop(process)
