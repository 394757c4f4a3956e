"""The self-hosted rows (issue 13): turns per second, time to first text, 1,000 streams, start-up.

This service (gunicorn as configured, self-hosted mode, SQLite and PostgreSQL), the peer
`chatkit_sample_fastapi` (uvicorn, one process) and the Responses API stand-in called directly, all
against the same loopback stand-in (`python -m tests.responses_standin`). The load comes from
`python -m bench.chatkit_load` in its own process; `/health` is timed by another process.
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.procs import LOOPBACK, Server, free_port, rss_mb

if TYPE_CHECKING:
    from bench.harness import Run

PEER = "chatkit_sample_fastapi"
OURS_PATH = "/api/chatkit"
PEER_PATH = "/chatkit"
RESPONSES_PATH = "/v1/responses"
STANDIN_KEY = "sk-standin-responses"  # tests/responses_standin.py DEFAULT_KEY
HIGH_LIMIT = "1000000/minute"
TURN_CLIENTS = 32
METRIC_REQUESTS = "chatkit_http_requests_total"
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SelfHostedBench:
    """The self-hosted part of one run; rows and memory go to the run's lists."""

    def __init__(self, run: Run) -> None:
        self.run = run
        quick = run.args.quick
        self.turn_seconds = run.args.duration
        self.warmup_seconds = run.args.warmup
        self.ttft_turns = 10 if quick else 200
        # Quick: a few streams of the 0 ms stand-in, just enough to exercise the path.
        self.streams = 40 if quick else 1000
        self.stream_deltas, self.stream_delay_ms = (5, 0) if quick else (10, 500)
        self.startup_runs = 1 if quick else 3
        self.startup: dict[str, Any] = {}

    # Processes

    def standin(self, name: str, delta_delay_ms: int = 0, deltas: int = 5) -> Server:
        port = free_port()
        argv = [self.run.python, "-m", "tests.responses_standin", "--port", str(port), "--no-record"]
        argv += ["--delta-delay-ms", str(delta_delay_ms), "--deltas", str(deltas), "--api-key", STANDIN_KEY]
        self.run.servers_env[name] = {"argv": shlex.join(argv)}
        return Server(name, argv, port, {}, self.run.scratch / f"{name}.log", _root())

    def ours(self, name: str, standin: Server, database_url: str) -> Server:
        port = free_port()
        env = {
            "PORT": str(port),
            "HOST": LOOPBACK,
            "CHATKIT_ENV": "production",
            "CHATKIT_MODE": "self_hosted",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "OPENAI_API_KEY": STANDIN_KEY,
            "OPENAI_BASE_URL": f"{standin.base}/v1",
            "DATABASE_URL": database_url,
            "CHATKIT_METRICS": "on",
            # High limits: the bench measures throughput, not 429s.
            "CHATKIT_MESSAGE_RATE_LIMIT": HIGH_LIMIT,
            "CHATKIT_MESSAGE_RATE_LIMIT_PER_ADDRESS": HIGH_LIMIT,
            "CHATKIT_READ_RATE_LIMIT": HIGH_LIMIT,
            "CHATKIT_READ_RATE_LIMIT_PER_ADDRESS": HIGH_LIMIT,
        }
        if self.run.args.workers:
            env["WEB_CONCURRENCY"] = str(self.run.args.workers)
        if self.run.args.worker_connections:
            env["GUNICORN_WORKER_CONNECTIONS"] = str(self.run.args.worker_connections)
        return self.run.gunicorn(name, "wsgi:app", env)

    def peer(self, standin: Server) -> Server:
        port = free_port()
        uvicorn = self.run.args.peers_venv / "bin" / "uvicorn"
        argv = [str(uvicorn), f"{PEER}:app", "--app-dir", str(self.run.args.peers_dir)]
        argv += ["--host", LOOPBACK, "--port", str(port), "--no-access-log"]
        env = {
            "OPENAI_API_KEY": STANDIN_KEY,
            "OPENAI_BASE_URL": f"{standin.base}/v1",
            "OPENAI_AGENTS_DISABLE_TRACING": "1",
        }
        self.run.servers_env[PEER] = {"argv": shlex.join(argv), **env}
        return Server(PEER, argv, port, env, self.run.scratch / f"{PEER}.log", self.run.args.peers_dir)

    def load(self, command: str, url: str, *options: str, timeout: float = 600) -> dict[str, Any]:
        """Run `python -m bench.chatkit_load <command>` and return its JSON (raises RuntimeError)."""
        argv = [self.run.python, "-m", "bench.chatkit_load", command, "--url", url, *options]
        result = subprocess.run(argv, cwd=_root(), capture_output=True, text=True, timeout=timeout, check=False)
        for line in result.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                data = json.loads(line[len("BENCH_JSON ") :])
                data["command"] = shlex.join(["python", *argv[1:]])
                return data
        raise RuntimeError(
            f"chatkit_load {command} printed no result (exit {result.returncode}): {result.stderr[-500:]}"
        )

    # The parts

    def run_all(self) -> None:
        args = self.run.args
        with self.run.running(self.standin("responses-standin-0ms"), ready_path=None) as standin:
            self.standin_ttft(standin)
            self.ours_turns("sqlite", standin, f"sqlite:///{self.run.scratch / 'selfhosted.sqlite3'}")
            if args.postgres:
                self.ours_turns_postgres(standin)
            else:
                for row_id in ("chat_turns.ours.postgres", "chat_ttft.ours.postgres"):
                    self.run.skip(row_id, "PostgreSQL not run (--quick; add --postgres)", group="chat")
            self.peer_turns(standin)
        if args.quick:
            # The streams row ran on the SQLite server, against this stand-in (unless that server failed).
            for row_id in ("chat_streams.ours", "chat_streams.peer"):
                if not any(r["id"] == row_id for r in self.run.rows):
                    self.run.skip(row_id, "not run: the SQLite server did not start", group="chat")
            return
        slow = self.standin("responses-standin-streams", self.stream_delay_ms, self.stream_deltas)
        with self.run.running(slow, ready_path=None) as standin:
            self.ours_streams(standin)
            self.peer_streams(standin)

    def standin_ttft(self, standin: Server) -> None:
        row = self.run.add_row("chat_ttft.standin", server="Responses stand-in (direct)", group="chat", kind="ttft")
        self._measure(row, lambda: self.load("ttft", standin.base + RESPONSES_PATH, "--turns", str(self.ttft_turns)))

    def ours_turns(self, backend: str, standin: Server, database_url: str, count=None) -> None:
        if count is None:
            path = Path(database_url.removeprefix("sqlite:///"))
            count = _sqlite_counter(path)
        name = f"ours-selfhosted-{backend}"
        server = self.ours(name, standin, database_url)
        turns = self.run.add_row(
            f"chat_turns.ours.{backend}", server=f"this service (gunicorn, {backend})", group="chat", kind="turns"
        )
        ttft = self.run.add_row(
            f"chat_ttft.ours.{backend}", server=f"this service (gunicorn, {backend})", group="chat", kind="ttft"
        )
        try:
            started = time.perf_counter()
            with self.run.running(server):
                ready = time.perf_counter() - started
                first = self.load("ttft", server.base + OURS_PATH, "--turns", "1")
                if backend == "sqlite":
                    self.startup["gunicorn_to_health_s"] = round(ready, 3)
                    self.startup["gunicorn_to_first_answer_s"] = round(time.perf_counter() - started, 3)
                    self.startup["first_answer_ms"] = first.get("turn_p50_ms")
                self._turns(turns, server.base + OURS_PATH, count, server)
                self._measure(ttft, lambda: self.load("ttft", server.base + OURS_PATH, "--turns", str(self.ttft_turns)))
                self.run.record_memory(server, f"chat turns ({backend})")
                if self.run.args.quick and backend == "sqlite":
                    # Quick: a few streams on this server, no second start (the smoke run stays short).
                    streams = self.run.add_row(
                        "chat_streams.ours", server=f"this service (gunicorn, {backend})", group="chat"
                    )
                    self._streams(streams, server, OURS_PATH)
                    self.run.skip("chat_streams.peer", "peers not run in --quick", server=PEER, group="chat")
        except RuntimeError as error:
            for row in (turns, ttft):
                if row["status"] == "pending":
                    row.update(status="error", detail=str(error))

    def ours_turns_postgres(self, standin: Server) -> None:
        try:
            with fresh_postgres(self.run) as (url, count):
                self.ours_turns("postgres", standin, url, count)
        except Exception as error:  # noqa: BLE001 - the rows are errors, the run goes on
            for row_id in ("chat_turns.ours.postgres", "chat_ttft.ours.postgres"):
                if not any(r["id"] == row_id for r in self.run.rows):
                    self.run.add_row(row_id, group="chat").update(
                        status="error", detail=f"PostgreSQL: {type(error).__name__}: {error}"
                    )

    def peer_turns(self, standin: Server) -> None:
        ids = ("chat_turns.peer", "chat_ttft.peer")
        problem = None if self.run.args.peers else "peers not run (--quick; add --peers)"
        problem = problem or self.run.ensure_peers_venv()
        if problem:
            for row_id in ids:
                self.run.skip(row_id, problem, server=PEER, group="chat")
            return
        label = f"{PEER} (uvicorn, 1 process)"
        turns = self.run.add_row("chat_turns.peer", server=label, group="chat", kind="turns")
        ttft = self.run.add_row("chat_ttft.peer", server=label, group="chat", kind="ttft")
        try:
            with self.run.running(self.peer(standin)) as server:
                self._turns(turns, server.base + PEER_PATH, None, server)
                self._measure(ttft, lambda: self.load("ttft", server.base + PEER_PATH, "--turns", str(self.ttft_turns)))
                self.run.record_memory(server, "chat turns")
        except RuntimeError as error:
            for row in (turns, ttft):
                if row["status"] == "pending":
                    row.update(status="error", detail=str(error))

    def ours_streams(self, standin: Server) -> None:
        server = self.ours("ours-selfhosted-streams", standin, f"sqlite:///{self.run.scratch / 'streams.sqlite3'}")
        row = self.run.add_row("chat_streams.ours", server="this service (gunicorn, sqlite)", group="chat")
        try:
            with self.run.running(server):
                self._streams(row, server, OURS_PATH)
        except RuntimeError as error:
            row.update(status="error", detail=str(error))

    def peer_streams(self, standin: Server) -> None:
        problem = None if self.run.args.peers else "peers not run (--quick; add --peers)"
        problem = problem or self.run.ensure_peers_venv()
        if problem:
            self.run.skip("chat_streams.peer", problem, server=PEER, group="chat")
            return
        row = self.run.add_row("chat_streams.peer", server=f"{PEER} (uvicorn, 1 process)", group="chat")
        try:
            with self.run.running(self.peer(standin)) as server:
                self._streams(row, server, PEER_PATH)
        except RuntimeError as error:
            row.update(status="error", detail=str(error))

    # Measurements

    def _measure(self, row: dict[str, Any], load: Callable[[], dict[str, Any]]) -> None:
        try:
            row.update(load())
        except (RuntimeError, subprocess.SubprocessError, OSError) as error:
            row.update(status="error", detail=str(error))
            return
        row["status"] = "ok" if row.get("ok") else "error"
        if row["status"] != "ok":
            row["detail"] = f"no turn succeeded: {row.get('failures')}"

    def _turns(self, row: dict[str, Any], url: str, count: Callable[[], int | None] | None, server: Server) -> None:
        if self.warmup_seconds > 0:
            self.load("turns", url, "--clients", str(TURN_CLIENTS), "--duration", str(self.warmup_seconds))
            time.sleep(0.3)
        before = count() if count else None
        scraped = scrape(server.base) if count else None
        self._measure(
            row, lambda: self.load("turns", url, "--clients", str(TURN_CLIENTS), "--duration", str(self.turn_seconds))
        )
        if count is None or row["status"] != "ok":
            return
        after = count()
        if before is not None and after is not None:
            stored = after - before
            row["stored_turns"] = stored
            row["stored_ok"] = stored == row["ok"]
            row["stored_check"] = "ok" if stored == row["ok"] else f"{stored} answers stored for {row['ok']} turns"
        if scraped is not None:
            counted = _requests(scrape(server.base), OURS_PATH, "200") - _requests(scraped, OURS_PATH, "200")
            row["metrics_requests_200"] = counted
            row["metrics_check"] = "ok" if counted == row["ok"] else f"/metrics counted {counted} for {row['ok']} turns"
        else:
            row["metrics_check"] = "GET /metrics not available"

    def _streams(self, row: dict[str, Any], server: Server, path: str) -> None:
        """All streams at once, /health timed from another process, worker memory sampled meanwhile."""
        url = server.base + path
        self.load("turns", url, "--clients", "8", "--duration", "1")  # warm: first requests, pools
        pids = server.worker_pids()
        before = {pid: rss_mb(pid) or 0.0 for pid in pids}
        peak = dict(before)
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.1):
                for pid in pids:
                    peak[pid] = max(peak[pid], rss_mb(pid) or 0.0)

        probe_argv = [self.run.python, "-m", "bench.chatkit_load", "probe", "--url", server.base + "/health"]
        probe = subprocess.Popen(probe_argv, cwd=_root(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = threading.Thread(target=sample, daemon=True)
        try:
            assert probe.stdout is not None
            probe.stdout.readline()  # "probing": the probe is timing from now on
            sampler.start()
            self._measure(row, lambda: self.load("streams", url, "--count", str(self.streams)))
        finally:
            sampling.set()
            probe.terminate()
            out, _ = probe.communicate(timeout=30)
        health = next((json.loads(x[11:]) for x in out.splitlines() if x.startswith("BENCH_JSON ")), {})
        sampler.join(timeout=5)
        grown = sum(peak.values()) - sum(before.values())
        row.update(
            deltas=self.stream_deltas,
            delta_delay_ms=self.stream_delay_ms,
            health_probe=health,
            health_p50_ms=health.get("p50_ms"),
            health_p99_ms=health.get("p99_ms"),
            health_failed=health.get("failed"),
            workers=len(pids),
            rss_before_mb=round(sum(before.values()), 1),
            rss_peak_mb=round(sum(peak.values()), 1),
            worker_peak_rss_mb=[round(v, 1) for v in peak.values()],
            kib_per_stream=round(grown * 1024 / self.streams, 1),
            probe_command=shlex.join(["python", *probe_argv[1:]]),
        )
        if row.get("status") == "ok":
            row["all_completed"] = row["completed"] == self.streams
        self.run.record_memory(server, f"{self.streams} streams")

    def startup_breakdown(self) -> None:
        """Import + create_app(), then warm() (what gunicorn's post_worker_init does), in fresh processes."""
        db = self.run.scratch / "startup-selfhosted.sqlite3"
        env = {
            **self.run.base_env,
            "CHATKIT_ENV": "production",
            "CHATKIT_MODE": "self_hosted",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "OPENAI_API_KEY": STANDIN_KEY,
            "OPENAI_BASE_URL": f"http://{LOOPBACK}:9/v1",
            "DATABASE_URL": f"sqlite:///{db}",
        }
        code = (
            "import time; t0 = time.perf_counter()\n"
            "from chatkit_backend import create_app\n"
            "app = create_app(); t1 = time.perf_counter()\n"
            "app.extensions['chatkit_selfhosted'].warm(); t2 = time.perf_counter()\n"
            "print(t1 - t0, t2 - t1)"
        )
        runs = []
        try:
            subprocess.run(
                [self.run.python, "-c", code], cwd=_root(), env=env, check=True, timeout=120, capture_output=True
            )
            for _ in range(self.startup_runs):
                out = subprocess.run(
                    [self.run.python, "-c", code],
                    cwd=_root(),
                    env=env,
                    check=True,
                    timeout=120,
                    capture_output=True,
                    text=True,
                ).stdout
                runs.append(tuple(float(x) for x in out.split()[-2:]))
        except (subprocess.SubprocessError, ValueError) as error:
            self.startup.update(status="error", detail=str(error))
            return
        self.startup.update(
            status="ok",
            runs=len(runs),
            create_app_s=round(statistics.median(r[0] for r in runs), 3),
            warm_s=round(statistics.median(r[1] for r in runs), 3),
        )


def scrape(base: str) -> str | None:
    """The text of GET /metrics (loopback needs no token), or None when the route is not there."""
    try:
        with _opener.open(base + "/metrics", timeout=10) as response:
            return response.read().decode()
    except OSError:
        return None


def _requests(text: str | None, route: str, status: str) -> int:
    """Sum of chatkit_http_requests_total samples for `route` and `status` in a scrape."""
    total = 0.0
    for line in (text or "").splitlines():
        if line.startswith(METRIC_REQUESTS + "{") and f'route="{route}"' in line and f'status="{status}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _sqlite_counter(path: Path) -> Callable[[], int | None]:
    def count() -> int | None:
        import sqlite3

        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as connection:
                query = "SELECT count(*) FROM chatkit_items WHERE type = 'assistant_message'"
                return connection.execute(query).fetchone()[0]
        except sqlite3.Error:
            return None

    return count


@contextmanager
def fresh_postgres(run: Run) -> Iterator[tuple[str, Callable[[], int | None]]]:
    """A new migrated PostgreSQL database for this part, dropped afterwards; yields its URL and a counter."""
    from sqlalchemy import create_engine, text

    from chatkit_backend.db import normalise_url

    admin = create_engine(normalise_url(run.args.pg_url), isolation_level="AUTOCOMMIT")
    name = f"chatkit_bench_sh_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = run.args.pg_url.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(normalise_url(url), pool_size=1)

    def count() -> int | None:
        try:
            with engine.connect() as connection:
                query = "SELECT count(*) FROM chatkit_items WHERE type = 'assistant_message'"
                return connection.execute(text(query)).scalar()
        except Exception:  # noqa: BLE001 - no table yet: "could not count"
            return None

    try:
        migrate = [run.python, "-m", "flask", "--app", "chatkit_backend", "db", "upgrade"]
        env = {**run.base_env, "DATABASE_URL": url, "CHATKIT_ENV": "development"}
        subprocess.run(migrate, cwd=_root(), env=env, check=True, timeout=120, capture_output=True)
        yield url, count
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _root() -> Path:
    return Path(__file__).resolve().parent.parent
