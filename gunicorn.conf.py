"""gunicorn settings, found by default when gunicorn starts in this folder.

Tuned for a platform router with a 30 s request limit: the upstream read timeout (15 s by
default, at most 25 s) always ends a request before gunicorn's worker timeout does.
"""

import gc
import os
import runpy
import shutil
import tempfile
from pathlib import Path

from dotenv import find_dotenv, load_dotenv

load_dotenv(find_dotenv(usecwd=True))  # the .env of the folder the service starts in

# A platform router (or nginx) reaches the app from outside the dyno, so listen on every interface.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
# One gevent worker per core: a request waiting on the upstream costs a greenlet, not a thread, so one
# process carries hundreds of concurrent upstream calls (gthread compared: docs/BENCHMARKS.md). gunicorn
# patches the standard library for gevent before the app is imported; psycopg 3 waits cooperatively, and
# every SQLite write runs in gevent's native thread pool (db.Database.write).
workers = int(os.environ.get("WEB_CONCURRENCY", str(len(os.sched_getaffinity(0)))))
# With gunicorn's own error pages (request line or header too long, malformed request) answered
# as the JSON error contract.
worker_class = "gunicorn_worker.JsonErrorGeventWorker"
# Concurrent connections per worker, idle keep-alive ones included.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = 30
# Seconds a client may take to send a request body once its headers are in (the worker's own
# setting; gunicorn's keepalive bounds the wait for headers). Slow clients then hold a connection
# at most this long, not until they give up.
request_body_timeout = float(os.environ.get("GUNICORN_REQUEST_BODY_TIMEOUT", "10"))
graceful_timeout = 20
keepalive = 5
# Requests are logged by the app as JSON (with request ids); gunicorn's own access log would double them.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Forwarding headers are interpreted in one place only, the app's ProxyFix (TRUSTED_PROXY_HOPS).
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
# The app's JSON log format, read from its file: importing the package would load Flask into this master.
_log_format = runpy.run_path(os.path.join(os.path.dirname(__file__), "chatkit_backend", "log_format.py"))
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # The app attaches its own JSON handler (with request ids) to the root logger; gunicorn adds none there.
    "root": {"level": "INFO", "handlers": []},
    "formatters": {"json": _log_format["JSON_FORMATTER"]},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def _metrics_on() -> bool:
    # config.parse_flag's true values; not imported, so the master stays light (a bad value fails the app's load).
    return os.environ.get("CHATKIT_METRICS", "").strip().lower() in ("1", "true", "yes", "on")


def _prepare_metrics_dir(server) -> None:
    """Give the workers an empty PROMETHEUS_MULTIPROC_DIR: samples of a previous start must not be summed."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="chatkit-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        server.metrics_dir_created = path
    server.log.info("metrics: workers write their samples to %s", path)


def on_starting(server) -> None:
    """Warn once, in the master, when rate limits would be counted per worker; prepare the metrics folder."""
    if _metrics_on():
        _prepare_metrics_dir(server)
    storage = os.environ.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://"
    if server.cfg.workers > 1 and storage.startswith("memory://"):
        server.log.warning(
            "RATELIMIT_STORAGE_URI is memory:// with %d workers: each worker counts its own limits, so a "
            "client may get up to %d times the configured rate. Set RATELIMIT_STORAGE_URI=redis://... "
            "for exact limits across workers and machines.",
            server.cfg.workers,
            server.cfg.workers,
        )


def child_exit(server, worker) -> None:
    """A worker's live gauges (open streams) stop counting when it exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and _metrics_on():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics folder this start created."""
    created = getattr(server, "metrics_dir_created", None)
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


def post_worker_init(worker) -> None:
    """Once the app is loaded: warm the self-hosted ChatKit server, then keep objects out of the collector's way.

    Warming imports openai-chatkit and the Agents SDK (~3 s) and starts the worker's event loop
    before the worker takes requests, instead of during its first conversation.

    Everything alive now (modules, the app, its engine and pools) lives as long as the worker, yet
    each full collection would walk it again; frozen, it is never scanned. Collections of young
    objects then run after 20,000 allocations instead of 700 (measured: docs/BENCHMARKS.md).
    """
    worker.request_body_timeout = request_body_timeout
    chatkit = getattr(worker.wsgi, "extensions", {}).get("chatkit_selfhosted")
    if chatkit is not None:
        chatkit.warm()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
