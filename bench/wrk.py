"""Drive `wrk` (Debian package) with one of the Lua scripts in bench/lua and read its JSON line."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LUA_DIR = Path(__file__).resolve().parent / "lua"
MARKER = "BENCH_JSON "


class WrkError(RuntimeError):
    pass


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str | None:
    path = wrk_path()
    if not path:
        return None
    result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (result.stdout + result.stderr).splitlines()[0].strip() if (result.stdout + result.stderr) else None


@dataclass
class WrkResult:
    command: list[str]
    duration_s: float
    requests: int
    statuses: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if code.startswith("2"))

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))

    @property
    def socket_errors(self) -> int:
        return sum(self.errors[k] for k in ("connect", "read", "write", "timeout"))


def run_wrk(
    url: str,
    script: str,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    timeout_s: float = 5,
    env: Mapping[str, str] | None = None,
) -> WrkResult:
    """Run wrk for a bounded time against a loopback URL; raises WrkError when it prints no result."""
    host = urlsplit(url).hostname or ""
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise WrkError(f"refusing to load a non-loopback address: {url}")
    path = wrk_path()
    if path is None:
        raise WrkError("wrk is not installed (apt-get install wrk)")
    threads = max(1, min(threads, connections))
    command = [
        path,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "BENCH_LUA_DIR": str(LUA_DIR), **(env or {})},
        timeout=duration_s + timeout_s + 30,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise WrkError(f"wrk printed no result (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    latency = {k: v / 1000 for k, v in data["latency_us"].items()}
    return WrkResult(
        command=command,
        duration_s=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        statuses={k: int(v) for k, v in data["statuses"].items()},
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_ms=latency,
    )
