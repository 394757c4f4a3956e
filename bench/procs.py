"""Processes the harness starts: loopback ports, readiness polls, orderly stops, resident memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Loopback only: never through a proxy that the environment may name.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One server process the harness started; its output goes to a log file, never to a pipe."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str]  # only the variables the harness set (recorded in the results)
    log_path: Path
    cwd: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, base_env: Mapping[str, str], ready_path: str | None = "/health", timeout: float = 60) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env={**base_env, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._log = log
        self.wait_ready(ready_path, timeout)
        return self

    def wait_ready(self, path: str | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if path is None:
                    with socket.create_connection((LOOPBACK, self.port), timeout=1):
                        return
                else:
                    _opener.open(self.base + path, timeout=2).close()
                    return
            except urllib.error.HTTPError:
                return  # it answers: up
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer on port {self.port} within {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self, timeout: float = 25) -> None:
        """SIGTERM (graceful for gunicorn and uvicorn), then SIGKILL of this process group if it hangs."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._log.close()
        self.process = None

    def worker_pids(self) -> list[int]:
        """The server's child processes (gunicorn workers); the process itself when it has none."""
        if self.process is None:
            return []
        children = child_pids(self.process.pid)
        return children or [self.process.pid]


def child_pids(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` in MiB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def http(method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None) -> int:
    """One request; returns the status (or 0 when nothing answered)."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _opener.open(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
    except OSError:
        return 0
