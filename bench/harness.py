"""The benchmark run: servers, load, stored-row counts, memory, start-up time, targets, report.

    python -m bench            # full run (a few minutes)
    python -m bench --quick    # smoke run (seconds): short loads, no peers, no PostgreSQL

Every load goes to 127.0.0.1 and is bounded by wrk's duration; every process the harness starts is
stopped by its own id before the run ends.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench import PASSTHROUGH_PATH, TRIVIAL_PATH, report
from bench.procs import LOOPBACK, Server, free_port, http, rss_mb
from bench.selfhosted import SelfHostedBench
from bench.wrk import WrkError, run_wrk, wrk_path, wrk_version

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
PEERS_DIR_DEFAULT = ROOT.parent / "shared" / "peers"
PEERS_VENV_DEFAULT = BENCH_DIR / ".venv-peers"
PEERS = ("seed_fastapi", "starter_fastapi_httpx")
STANDIN_KEY = "sk-standin-test-key"
STANDIN_WORKFLOW = "wf_standin"
SESSION_PATH = "/api/chatkit/session"
ANALYTICS_SINGLE_PATH = "/api/analytics/message"
ANALYTICS_BATCH_PATH = "/api/analytics/events"
EVENTS_TABLE_DEFAULT = "analytics_events"  # chatkit_backend/analytics/models.py: EVENTS
PG_ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
HIGH_LIMIT = "1000000/minute"
# Inherited variables that would change what the service does; the harness sets its own.
_STRIP_PREFIXES = ("CHATKIT_", "OPENAI_")
_STRIP_NAMES = (
    "SECRET_KEY",
    "DATABASE_URL",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_KEY_PREFIX",
    "CORS_ORIGINS",
    "TRUSTED_PROXY_HOPS",
    "MAX_CONTENT_LENGTH",
    "LOG_LEVEL",
    "WEB_CONCURRENCY",
    "GUNICORN_WORKER_CONNECTIONS",
    "PORT",
    "HOST",
)

# Load shapes: (upstream latency ms, connections), as issue 6 sets them.
SESSION_SHAPES = ((0, 50), (300, 200))
INGEST_CONNECTIONS = 50
PARTS = ("startup", "sessions", "ingest", "selfhosted")
WARMUP_CONNECTIONS = 8


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s loads, no peers, no PostgreSQL")
    parser.add_argument("--duration", type=float, help="seconds per measured load (default 10, quick 1)")
    parser.add_argument("--warmup", type=float, help="seconds of unmeasured load before each (default 2, quick 0)")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, help="run the peers (default: full only)")
    parser.add_argument(
        "--postgres", action=argparse.BooleanOptionalAction, help="analytics on PostgreSQL (default: full only)"
    )
    parser.add_argument("--latencies", default=None, help="upstream latencies to run, e.g. '0,300' (default both)")
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (default 1: leave the cores to servers)"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch request (default 100)")
    parser.add_argument("--import-runs", type=int, help="fresh processes for the start-up time (default 7, quick 3)")
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY for our gunicorn (default: gunicorn.conf.py's)")
    parser.add_argument(
        "--worker-connections",
        type=int,
        help="GUNICORN_WORKER_CONNECTIONS for our gunicorn (default: gunicorn.conf.py's)",
    )
    parser.add_argument("--pool-size", type=int, help="CHATKIT_UPSTREAM_POOL_SIZE (default: the service's)")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default all: {','.join(PARTS)})",
    )
    parser.add_argument("--events-table", default=EVENTS_TABLE_DEFAULT, help="table that holds analytics events")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", PG_ADMIN_URL_DEFAULT))
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR_DEFAULT)
    parser.add_argument("--peers-venv", type=Path, default=PEERS_VENV_DEFAULT)
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--json-name", help="results file name (default: the run's UTC date and time)")
    args = parser.parse_args(argv)
    args.duration = args.duration or (1.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.0 if args.quick else 2.0)
    args.peers = args.peers if args.peers is not None else not args.quick
    args.postgres = args.postgres if args.postgres is not None else not args.quick
    args.import_runs = args.import_runs or (3 if args.quick else 7)
    args.parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if args.parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(args.parts - set(PARTS)))}")
    args.latencies = (
        tuple(int(x) for x in args.latencies.split(",")) if args.latencies else tuple(s[0] for s in SESSION_SHAPES)
    )
    return args


def machine() -> dict[str, Any]:
    cpu_model = None
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "wrk": wrk_version(),
    }


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith(_STRIP_PREFIXES) or k in _STRIP_NAMES)}
    env.pop("PYTHONPATH", None)
    return env


class Run:
    """One benchmark run: its settings, scratch folder, servers and collected rows."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.run_id = uuid.uuid4().hex[:10]
        self.rows: list[dict[str, Any]] = []
        self.memory: list[dict[str, Any]] = []
        self.servers_env: dict[str, dict[str, str]] = {}
        self.notes: list[str] = []
        self.base_env = base_env()
        self.python = sys.executable

    # Servers

    def our_env(self, standin_url: str, database_url: str, port: int) -> dict[str, str]:
        env = {
            "PORT": str(port),
            "HOST": LOOPBACK,
            "CHATKIT_ENV": "production",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "OPENAI_API_KEY": STANDIN_KEY,
            "CHATKIT_WORKFLOW_ID": STANDIN_WORKFLOW,
            "CHATKIT_API_BASE": standin_url,
            "DATABASE_URL": database_url,
            # High limits: the bench measures throughput, not 429s.
            "CHATKIT_SESSION_RATE_LIMIT": HIGH_LIMIT,
            "CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS": HIGH_LIMIT,
            "CHATKIT_THREADS_RATE_LIMIT": HIGH_LIMIT,
            "CHATKIT_ANALYTICS_RATE_LIMIT": HIGH_LIMIT,
            "CHATKIT_ANALYTICS_EVENT_RATE_LIMIT": HIGH_LIMIT,
            "CHATKIT_THREADS_RATE_LIMIT_PER_ADDRESS": HIGH_LIMIT,
        }
        if self.args.workers:
            env["WEB_CONCURRENCY"] = str(self.args.workers)
        if self.args.worker_connections:
            env["GUNICORN_WORKER_CONNECTIONS"] = str(self.args.worker_connections)
        if self.args.pool_size:
            env["CHATKIT_UPSTREAM_POOL_SIZE"] = str(self.args.pool_size)
        return env

    def gunicorn(self, name: str, module: str, env: dict[str, str]) -> Server:
        port = int(env["PORT"])
        argv = [self.python, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), module]
        self.servers_env[name] = {"argv": shlex.join(argv), **env}
        return Server(name, argv, port, env, self.scratch / f"{name}.log", ROOT)

    @contextmanager
    def running(self, server: Server, ready_path: str | None = "/health") -> Iterator[Server]:
        server.start(self.base_env, ready_path)
        try:
            yield server
        finally:
            server.stop()

    def standin(self, latency_ms: int) -> Server:
        port = free_port()
        argv = [
            self.python,
            "-m",
            "tests.chatkit_standin",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--api-key",
            STANDIN_KEY,
            "--workflow",
            STANDIN_WORKFLOW,
            "--no-record",
        ]
        name = f"standin-{latency_ms}ms"
        self.servers_env[name] = {"argv": shlex.join(argv)}
        return Server(name, argv, port, {}, self.scratch / f"{name}.log", ROOT)

    def peer(self, peer: str, standin_url: str) -> Server:
        port = free_port()
        uvicorn = self.args.peers_venv / "bin" / "uvicorn"
        argv = [str(uvicorn), f"{peer}:app", "--app-dir", str(self.args.peers_dir)]
        argv += ["--host", LOOPBACK, "--port", str(port), "--no-access-log"]
        env = {
            "OPENAI_API_KEY": STANDIN_KEY,
            "OPENAI_BASE_URL": f"{standin_url}/v1",
            "OPENAI_WORKFLOW_ID": STANDIN_WORKFLOW,
            "CHATKIT_API_BASE": standin_url,
        }
        self.servers_env[f"{peer}"] = {"argv": shlex.join(argv), **env}
        return Server(peer, argv, port, env, self.scratch / f"{peer}.log", self.args.peers_dir)

    def ensure_peers_venv(self) -> str | None:
        """Create (once, cached) the peers' virtual environment; returns why it cannot, or None."""
        requirements = self.args.peers_dir / "requirements.txt"
        if not requirements.exists():
            return f"no peers at {self.args.peers_dir}"
        venv = self.args.peers_venv
        stamp = venv / ".requirements"
        wanted = requirements.read_text()
        if (venv / "bin" / "uvicorn").exists() and stamp.exists() and stamp.read_text() == wanted:
            return None
        print(f"creating the peers' virtual environment in {venv} ...", file=sys.stderr, flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)],
                check=True,
                timeout=600,
            )
        except (subprocess.SubprocessError, OSError) as error:
            return f"could not create the peers' venv: {error}"
        stamp.write_text(wanted)
        return None

    # Measurements

    def load(
        self,
        row: dict[str, Any],
        url: str,
        script: str,
        connections: int,
        env: dict[str, str] | None = None,
        per_request: int = 1,
    ) -> dict[str, Any]:
        """Warm up, then run the measured load; fills the row's figures (never raises)."""
        row.update(url=url, connections=connections, duration_s=self.args.duration)
        try:
            if self.args.warmup > 0:
                # A few connections only: a server that cannot drop abandoned work (the seed peer's
                # blocking call) would otherwise carry a whole warm-up backlog into the measured run.
                # Ids are run-thread-counter: the warm-up gets its own run id, or the measured load
                # would resend the warm-up's ids and idempotency would (rightly) store them once.
                warmup_env = (
                    {**env, "BENCH_RUN_ID": env["BENCH_RUN_ID"] + "-warmup"} if env and "BENCH_RUN_ID" in env else env
                )
                run_wrk(
                    url,
                    script,
                    connections=min(connections, WARMUP_CONNECTIONS),
                    duration_s=self.args.warmup,
                    env=warmup_env,
                    threads=self.args.wrk_threads,
                )
                time.sleep(0.3)
            before = row.pop("_count_before", None)
            if callable(before):
                row["_rows_before"] = before()
            result = run_wrk(
                url,
                script,
                connections=connections,
                duration_s=self.args.duration,
                env=env,
                threads=self.args.wrk_threads,
            )
        except (WrkError, subprocess.SubprocessError, OSError) as error:
            row.update(status="error", detail=str(error))
            return row
        seconds = result.duration_s or self.args.duration
        row.update(
            status="ok",
            command=shlex.join(result.command),
            requests=result.requests,
            ok=result.ok,
            non_2xx=result.non_2xx,
            socket_errors=result.socket_errors,
            errors=result.errors,
            statuses=result.statuses,
            rps=round(result.requests / seconds, 1),
            ok_rps=round(result.ok / seconds, 1),
            p50_ms=round(result.latency_ms["p50"], 2),
            p99_ms=round(result.latency_ms["p99"], 2),
            max_ms=round(result.latency_ms["max"], 2),
            measured_s=round(seconds, 3),
        )
        if per_request > 1:
            row["events_per_request"] = per_request
            row["ok_events_per_s"] = round(result.ok * per_request / seconds, 1)
        return row

    def add_row(self, row_id: str, **fields: Any) -> dict[str, Any]:
        row = {"id": row_id, "status": "pending", **fields}
        self.rows.append(row)
        return row

    def skip(self, row_id: str, reason: str, **fields: Any) -> None:
        self.add_row(row_id, **fields).update(status="skipped", detail=reason)

    def probe(self, row: dict[str, Any], method: str, url: str, body: bytes | None, headers=None) -> bool:
        """One request first: a 404 means the route is not merged yet ('not available')."""
        status = http(method, url, body, headers)
        row["probe_status"] = status
        if status == 404:
            row.update(status="not available", detail=f"{method} {url.split(LOOPBACK)[-1]} answered 404")
            return False
        if status == 0:
            row.update(status="error", detail="no answer to the probe request")
            return False
        return True

    def record_memory(self, server: Server, after: str) -> None:
        pids = server.worker_pids()
        workers = [{"pid": pid, "rss_mb": round(rss, 1)} for pid in pids if (rss := rss_mb(pid)) is not None]
        master = rss_mb(server.process.pid) if server.process else None
        self.memory.append(
            {
                "server": server.name,
                "after": after,
                "master_rss_mb": round(master, 1) if master else None,
                "workers": workers,
                "max_worker_rss_mb": max((w["rss_mb"] for w in workers), default=None),
            }
        )

    # The parts of the run

    def sessions(self, latency_ms: int, connections: int) -> None:
        tag = f"{latency_ms}ms"
        shape = {"latency_ms": latency_ms, "group": "session"}
        with self.running(self.standin(latency_ms), ready_path=None) as standin:
            body = json.dumps({"workflow": {"id": STANDIN_WORKFLOW}, "user": "bench-user"})
            row = self.add_row(f"session.standin.{tag}", server="stand-in (direct)", **shape)
            self.load(
                row,
                standin.base + "/v1/chatkit/sessions",
                "post_static.lua",
                connections,
                env={"BENCH_BODY": body, "BENCH_BEARER": STANDIN_KEY},
            )

            db_url = f"sqlite:///{self.scratch / f'sessions-{tag}.sqlite3'}"
            port = free_port()
            ours = self.gunicorn(f"ours-sessions-{tag}", "wsgi:app", self.our_env(standin.base, db_url, port))
            row = self.add_row(f"session.ours.{tag}", server="this service (gunicorn)", **shape)
            with self.running(ours):
                if self.probe(row, "POST", ours.base + SESSION_PATH, b"{}", {"Content-Type": "application/json"}):
                    self.load(row, ours.base + SESSION_PATH, "post_static.lua", connections)
                self.record_memory(ours, f"session load, {tag} x {connections}")

            port = free_port()
            bare = self.gunicorn(
                f"ours-passthrough-{tag}", "bench.trivial_app:app", self.our_env(standin.base, db_url, port)
            )
            row = self.add_row(
                f"session.passthrough.{tag}", server="this service: bench upstream pass-through", **shape
            )
            with self.running(bare):
                if self.probe(row, "POST", bare.base + PASSTHROUGH_PATH, b"{}", {"Content-Type": "application/json"}):
                    self.load(row, bare.base + PASSTHROUGH_PATH, "post_static.lua", connections)

            for peer in PEERS:
                row_id = f"session.{peer}.{tag}"
                if not self.args.peers:
                    self.skip(row_id, "peers not run (--quick; add --peers)", server=peer, **shape)
                    continue
                problem = self.ensure_peers_venv()
                if problem:
                    self.skip(row_id, problem, server=peer, **shape)
                    continue
                row = self.add_row(row_id, server=f"{peer} (uvicorn, 1 process)", **shape)
                try:
                    with self.running(self.peer(peer, standin.base)) as server:
                        if self.probe(
                            row, "POST", server.base + SESSION_PATH, b"{}", {"Content-Type": "application/json"}
                        ):
                            self.load(row, server.base + SESSION_PATH, "post_static.lua", connections)
                        self.record_memory(server, f"session load, {tag} x {connections}")
                except RuntimeError as error:
                    row.update(status="error", detail=str(error))

    def ingest(self, backend: str, database_url: str, count: Callable[[], int | None]) -> None:
        """/health, the trivial route and analytics ingest on one server of ours (bench.trivial_app)."""
        port = free_port()
        # The analytics rows never call the upstream; the sessions' address is set only to be complete.
        env = self.our_env(f"http://{LOOPBACK}:9", database_url, port)
        server = self.gunicorn(f"ours-ingest-{backend}", "bench.trivial_app:app", env)
        shape = {"group": "ingest", "backend": backend, "connections": INGEST_CONNECTIONS}
        json_headers = {"Content-Type": "application/json"}
        with self.running(server):
            if backend == "sqlite":
                row = self.add_row("health.ours", server="this service: GET /health", **shape)
                self.load(row, server.base + "/health", "get.lua", INGEST_CONNECTIONS)
            row = self.add_row(f"trivial.{backend}", server="this service: trivial JSON POST", **shape)
            if self.probe(row, "POST", server.base + TRIVIAL_PATH, b'{"hello":"world"}', json_headers):
                self.load(
                    row,
                    server.base + TRIVIAL_PATH,
                    "post_static.lua",
                    INGEST_CONNECTIONS,
                    env={"BENCH_BODY": '{"hello":"world"}'},
                )

            env = {"BENCH_RUN_ID": f"{self.run_id}-{backend}", "BENCH_BATCH_SIZE": str(self.args.batch_size)}
            probe_event = json.dumps({"thread_id": "cthr_probe", "event": "log", "id": f"probe-{uuid.uuid4().hex}"})
            row = self.add_row(f"analytics_single.{backend}", server="this service: analytics single", **shape)
            if self.probe(row, "POST", server.base + ANALYTICS_SINGLE_PATH, probe_event.encode(), json_headers):
                row["_count_before"] = count
                self.load(row, server.base + ANALYTICS_SINGLE_PATH, "analytics_single.lua", INGEST_CONNECTIONS, env)
                self.stored_rows(row, count, per_request=1)

            batch = json.dumps([{"type": "message", "event": "log", "id": f"probe-{uuid.uuid4().hex}"}])
            row = self.add_row(f"analytics_batch.{backend}", server="this service: analytics batch", **shape)
            if self.probe(row, "POST", server.base + ANALYTICS_BATCH_PATH, batch.encode(), json_headers):
                row["_count_before"] = count
                self.load(
                    row,
                    server.base + ANALYTICS_BATCH_PATH,
                    "analytics_batch.lua",
                    INGEST_CONNECTIONS,
                    env,
                    per_request=self.args.batch_size,
                )
                self.stored_rows(row, count, per_request=self.args.batch_size)
            self.record_memory(server, f"ingest load ({backend})")

    def stored_rows(self, row: dict[str, Any], count: Callable[[], int | None], per_request: int) -> None:
        """Rows stored during the measured load against 2xx answers (x events per request)."""
        before = row.pop("_rows_before", None)
        row.pop("_count_before", None)
        if row.get("status") != "ok":
            return
        time.sleep(1.0)  # requests wrk abandoned at its deadline may still commit
        after = count()
        if before is None or after is None:
            row["stored_check"] = f"could not count rows in {self.args.events_table}"
            return
        stored = after - before
        acknowledged = row["ok"] * per_request
        # wrk stops with up to one request per connection in flight: the server may commit those
        # without wrk counting their 2xx. Fewer rows than acknowledged events means lost events.
        in_flight = row["connections"] * per_request
        row.update(stored_rows=stored, acknowledged_events=acknowledged)
        if stored < acknowledged:
            row["stored_check"] = f"LOST {acknowledged - stored} acknowledged events"
        elif stored <= acknowledged + in_flight:
            row["stored_check"] = "ok" if stored == acknowledged else f"ok (+{stored - acknowledged} in flight at stop)"
        else:
            row["stored_check"] = f"{stored - acknowledged} more rows than acknowledged (duplicates?)"
        row["stored_ok"] = acknowledged <= stored <= acknowledged + in_flight

    def ingest_sqlite(self) -> None:
        path = self.scratch / "ingest.sqlite3"
        table = self.args.events_table

        def count() -> int | None:
            import sqlite3

            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as connection:
                    return connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
            except sqlite3.Error:
                return None

        self.ingest("sqlite", f"sqlite:///{path}", count)

    def ingest_postgres(self) -> None:
        ids = ("trivial.postgres", "analytics_single.postgres", "analytics_batch.postgres")
        if not self.args.postgres:
            for row_id in ids:
                self.skip(row_id, "PostgreSQL not run (--quick; add --postgres)", group="ingest", backend="postgres")
            return
        try:
            from sqlalchemy import create_engine, text

            from chatkit_backend.db import normalise_url

            admin = create_engine(normalise_url(self.args.pg_url), isolation_level="AUTOCOMMIT")
            name = f"chatkit_bench_{self.run_id}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as error:  # noqa: BLE001 - any failure: PostgreSQL rows are errors, the run goes on
            for row_id in ids:
                self.add_row(row_id, group="ingest", backend="postgres").update(
                    status="error", detail=f"PostgreSQL at {self.args.pg_url}: {type(error).__name__}: {error}"
                )
            return
        url = self.args.pg_url.rsplit("/", 1)[0] + "/" + name
        table = self.args.events_table
        engine = create_engine(normalise_url(url), pool_size=1)

        def count() -> int | None:
            try:
                with engine.connect() as connection:
                    return connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()  # noqa: S608
            except Exception:  # noqa: BLE001 - no table yet: "could not count"
                return None

        try:
            migrate = [self.python, "-m", "flask", "--app", "chatkit_backend", "db", "upgrade"]
            env = {**self.base_env, "DATABASE_URL": url, "CHATKIT_ENV": "development"}
            self.servers_env["postgres-migrate"] = {"argv": shlex.join(migrate), "DATABASE_URL": url}
            subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120, capture_output=True)
            self.ingest("postgres", url, count)
        except subprocess.SubprocessError as error:
            for row_id in ids:
                if not any(r["id"] == row_id for r in self.rows):
                    self.add_row(row_id, group="ingest", backend="postgres").update(
                        status="error", detail=f"migration failed: {error}"
                    )
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def startup_time(self) -> dict[str, Any]:
        """Import the package and call create_app() in fresh processes (SQLite already migrated)."""
        db = self.scratch / "startup.sqlite3"
        env = {
            **self.base_env,
            "CHATKIT_ENV": "production",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "OPENAI_API_KEY": STANDIN_KEY,
            "CHATKIT_WORKFLOW_ID": STANDIN_WORKFLOW,
            "DATABASE_URL": f"sqlite:///{db}",
        }
        code = (
            "import time; t0 = time.perf_counter()\n"
            "from chatkit_backend import create_app\n"
            "t1 = time.perf_counter(); create_app(); t2 = time.perf_counter()\n"
            "print(t1 - t0, t2 - t1)"
        )
        runs: list[tuple[float, float, float]] = []
        try:
            # A deployed service starts from compiled bytecode (pip compiles its dependencies; the
            # package's own is written on first start unless PYTHONDONTWRITEBYTECODE forbids it).
            compile_package = [self.python, "-m", "compileall", "-q", str(ROOT / "chatkit_backend")]
            subprocess.run(compile_package, cwd=ROOT, check=True, timeout=120, capture_output=True)
            # The first start migrates the new database (Alembic); it is not counted.
            subprocess.run([self.python, "-c", code], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True)
            for _ in range(self.args.import_runs):
                started = time.perf_counter()
                out = subprocess.run(
                    [self.python, "-c", code], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
                ).stdout
                wall = time.perf_counter() - started
                imported, created = (float(x) for x in out.split()[-2:])
                runs.append((imported, created, wall))
        except (subprocess.SubprocessError, ValueError) as error:
            return {"status": "error", "detail": str(error)}
        return {
            "status": "ok",
            "runs": len(runs),
            "import_s": round(statistics.median(r[0] for r in runs), 4),
            "create_app_s": round(statistics.median(r[1] for r in runs), 4),
            "import_and_create_app_s": round(statistics.median(r[0] + r[1] for r in runs), 4),
            "process_wall_s": round(statistics.median(r[2] for r in runs), 4),
        }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk_path() is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="chatkit-bench-") as scratch_name:
        run = Run(args, Path(scratch_name))
        # First, on an idle machine, as a service starts: after the loads, PostgreSQL is still
        # checkpointing hundreds of thousands of new rows (seen: 0.55 s at the end of a run, 0.35-0.45 s idle).
        selfhosted = SelfHostedBench(run)
        startup: dict[str, Any] = {"status": "skipped"}
        if "startup" in args.parts:
            print("bench: start-up time ...", file=sys.stderr, flush=True)
            startup = run.startup_time()
            if "selfhosted" in args.parts:
                selfhosted.startup_breakdown()
        if "sessions" in args.parts:
            for latency_ms, connections in SESSION_SHAPES:
                if latency_ms in args.latencies:
                    print(f"bench: sessions at {latency_ms} ms x {connections} ...", file=sys.stderr, flush=True)
                    run.sessions(latency_ms, connections)
        if "ingest" in args.parts:
            print("bench: ingest on SQLite ...", file=sys.stderr, flush=True)
            run.ingest_sqlite()
            print("bench: ingest on PostgreSQL ...", file=sys.stderr, flush=True)
            run.ingest_postgres()
        if "selfhosted" in args.parts:
            print("bench: self-hosted ChatKit (turns, first text, streams) ...", file=sys.stderr, flush=True)
            selfhosted.run_all()
        errors_in_logs = report.log_tail_errors(Path(scratch_name))
    finished = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "command": command,
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "git": git_describe(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "wrk_threads": args.wrk_threads,
            "batch_size": args.batch_size,
            "events_table": args.events_table,
            "import_runs": args.import_runs,
            "parts": sorted(args.parts),
        },
        "servers": run.servers_env,
        "rows": run.rows,
        "memory": run.memory,
        "startup": startup,
        "selfhosted_startup": selfhosted.startup,
        "server_log_errors": errors_in_logs,
    }
    results["targets"] = report.targets(results)
    name = args.json_name or started.strftime("%Y-%m-%dT%H%M%SZ") + ".json"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (args.results_dir / name).write_text(text)
    (args.results_dir / "latest.json").write_text(text)
    print(report.markdown(results))
    print(f"\nresults: {args.results_dir / name}", file=sys.stderr)
    return 0


def git_describe() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
