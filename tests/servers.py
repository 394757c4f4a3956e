"""Real server processes for integration tests: gunicorn with the project's config, nginx in front."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI, free_port
from tests.responses_standin import ResponsesStandin

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _unverified() -> ssl.SSLContext:
    # The test's own self-signed certificate on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    """Poll `url` until it answers, failing early if `process` exits."""
    deadline = time.monotonic() + seconds
    context = _unverified() if url.startswith("https:") else None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1, context=context).close()
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


@dataclass
class GunicornServer:
    """A running gunicorn master: its URL, process and log."""

    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def worker_pids(self) -> list[int]:
        """The master's worker processes (Linux: /proc/<pid>/task/<pid>/children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        _stop(self.process)


@contextmanager
def gunicorn_server(
    env: dict[str, str], log_path: Path, *, port: int | None = None, config: Path | None = None
) -> Iterator[GunicornServer]:
    """Run `gunicorn wsgi:app` from the project root with `env` on top of a clean environment.

    `config` replaces the shipped gunicorn.conf.py (tests/gunicorn_diagnostics.py wraps it); `port`
    reuses a port, e.g. to restart the service where its clients expect it.
    """
    port = port or free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATKIT_", "OPENAI_"))}
    full_env = {"HOST": "127.0.0.1", "WEB_CONCURRENCY": "2", **base_env, **env}
    full_env["PORT"] = str(port)
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", *(["-c", str(config)] if config else []), "wsgi:app"]
    with open(log_path, "a") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=log)
    try:  # nothing between the start and this try, so a failing test never leaves gunicorn running
        wait_until_up(url + "/health", process)
        yield GunicornServer(url, process, log_path)
    finally:
        _stop(process)


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Run `gunicorn wsgi:app` from the project root with `env` on top of a clean environment; yields its URL."""
    with gunicorn_server(env, log_path) as server:
        yield server.url


def selfhosted_env(standin: ResponsesStandin, database_url: str, **extra: str) -> dict[str, str]:
    """gunicorn's environment for a self-hosted service on `database_url` talking to `standin`; one worker."""
    return {
        "CHATKIT_ENV": "development",
        "SECRET_KEY": "deployed-test-secret-" + "k" * 20,
        "DATABASE_URL": database_url,
        "CHATKIT_MODE": "self_hosted",
        "OPENAI_API_KEY": standin.api_key,
        "OPENAI_BASE_URL": standin.base_url,
        "CHATKIT_MODEL_MAX_RETRIES": "0",
        "CHATKIT_MESSAGE_RATE_LIMIT": "100000/minute",
        "CHATKIT_MESSAGE_RATE_LIMIT_PER_ADDRESS": "100000/minute",
        "CHATKIT_READ_RATE_LIMIT": "100000/minute",
        "CHATKIT_READ_RATE_LIMIT_PER_ADDRESS": "100000/minute",
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "warning",
        **extra,
    }


def require_nginx() -> str:
    if NGINX is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return NGINX


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1, made with openssl."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextmanager
def nginx(app_url: str, workdir: Path, *, tls: bool = False, http_extra: str = "") -> Iterator[str]:
    """Run Debian's nginx on a loopback port with deploy/nginx.conf, proxying to `app_url`.

    With `tls`, nginx terminates TLS with a self-signed certificate (as the template's comment says
    to in production), so the app sees `X-Forwarded-Proto: https` from nginx's `$scheme`. `http_extra`
    goes into the `http` block, as a distribution's main nginx.conf would add it (e.g. `gzip on;`).
    """
    binary = require_nginx()
    port = free_port()
    template = (ROOT / "deploy" / "nginx.conf").read_text()
    workdir.mkdir(parents=True, exist_ok=True)
    listen = f"listen 127.0.0.1:{port};"
    if tls:
        cert, key = self_signed_certificate(workdir)
        listen = f"listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};"
    site = template.replace("listen 80;", listen, 1)
    site = re.sub(r"server 127\.0\.0\.1:8000;", f"server {app_url.removeprefix('http://')};", site)
    (workdir / "site.conf").write_text(site)
    temp = workdir / "tmp"
    temp.mkdir(exist_ok=True)
    (workdir / "nginx.conf").write_text(
        # As root, nginx's workers would switch to an unprivileged user that cannot write the test's temp dirs.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""
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
    {http_extra}
    include {workdir / "site.conf"};
}}
"""
    )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(url + "/health", process)
        yield url
    finally:
        _stop(process)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(
    url: str,
    method: str = "GET",
    path: str = "/",
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    timeout: float = 10,
) -> Answer:
    """One request from loopback address `source` (127.0.0.0/8), so a test can be several clients."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.partition(":")
    if scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, int(port), timeout=timeout, source_address=(source, 0), context=_unverified()
        )
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def open_sockets(pid: int, remote_port: int | None = None) -> int:
    """How many TCP sockets process `pid` holds open (Linux /proc), only those connected to `remote_port` if given."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return 0
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            if remote_port is None or int(fields[2].rsplit(":", 1)[1], 16) == remote_port:
                count += 1
    return count
