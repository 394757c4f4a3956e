"""`GET /metrics` in the Prometheus text format, when CHATKIT_METRICS is on.

Requests and latency per route and status, open streams and rate-limit refusals are counted here;
the self-hosted server reports the model's figures (`first_token`, `model_error`, `tokens`) and
areas add gauges read at scrape time (`add_gauge`: the analytics spool depth). Under gunicorn every
worker writes its samples to PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py makes a fresh one per start)
and a scrape sums them; without it (flask run, tests) they live in the app's own registry.
The route answers a request with the admin token when one is set; otherwise only a loopback client
that came through no proxy.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, request

from chatkit_backend.errors import ApiError
from chatkit_backend.rate_limits import limiter

EXTENSION_KEY = "metrics"
PATH = "/metrics"
# Seconds: a JSON answer in milliseconds, a stream's headers after the model's first event.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
# The kinds of selfhosted/turns.py's error_kind(), with every HTTP status as one label (a bounded set).
MODEL_ERROR_KINDS = ("rate_limited", "timeout", "unreachable", "status", "api_error", "other")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

bp = Blueprint("metrics", __name__)


class Metrics:
    """The service's metrics on their own registry (one per app: tests build many apps per process)."""

    def __init__(self, multiprocess_dir: str | None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry()
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []
        self.requests = Counter(
            "chatkit_http_requests",
            "Answers, by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "chatkit_http_request_duration_seconds",
            "Time until the answer's headers (for a stream: until its first event), by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.open_streams = Gauge(
            "chatkit_open_streams", "Streamed answers being sent now.", registry=registry, multiprocess_mode="livesum"
        )
        self.rate_limited = Counter(
            "chatkit_rate_limit_refusals",
            "Requests refused by a rate limit (429), by route.",
            ["route"],
            registry=registry,
        )
        self.first_token = Histogram(
            "chatkit_model_time_to_first_token_seconds",
            "From the start of a model run to its first text delta.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.model_errors = Counter(
            "chatkit_model_errors", "Model runs that failed, by kind.", ["kind"], registry=registry
        )
        self.tokens = Counter(
            "chatkit_model_tokens", "Tokens the model read (in) and wrote (out).", ["direction"], registry=registry
        )

    # What the self-hosted server reports (called on its event loop; prometheus_client is thread-safe).

    def model_first_token(self, seconds: float) -> None:
        self.first_token.observe(seconds)

    def model_error(self, kind: str) -> None:
        kind = "status" if kind.startswith("status_") else kind
        self.model_errors.labels(kind if kind in MODEL_ERROR_KINDS else "other").inc()

    def model_tokens(self, input_tokens: int, output_tokens: int) -> None:
        if input_tokens:
            self.tokens.labels("in").inc(input_tokens)
        if output_tokens:
            self.tokens.labels("out").inc(output_tokens)

    def add_gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """A gauge computed when scraped, in the scraping process (for state shared by every worker)."""
        self._gauges.append((name, documentation, read))

    # Requests

    def observe(self, response: Response) -> Response:
        rule = request.url_rule
        route = rule.rule if rule is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        self.requests.labels(route, method, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            self.latency.labels(route, method).observe(time.perf_counter() - started)
        if response.status_code == 429:
            self.rate_limited.labels(route).inc()
        if response.is_streamed and response.mimetype == "text/event-stream":
            self.open_streams.inc()
            response.call_on_close(self.open_streams.dec)
        return response

    def exposition(self) -> bytes:
        """Every worker's samples (or this process's), and the scrape-time gauges, in the text format."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import GaugeMetricFamily

        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        else:
            registry = self.registry
        text = generate_latest(registry)
        families = []
        for name, documentation, read in self._gauges:
            family = GaugeMetricFamily(name, documentation)
            family.add_metric([], float(read()))
            families.append(family)
        if families:
            extra = CollectorRegistry()
            extra.register(_Fixed(families))
            text += generate_latest(extra)
        return text


class _Fixed:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return self.families


def get_metrics() -> Metrics | None:
    """The current app's metrics, or None when CHATKIT_METRICS is off."""
    return current_app.extensions.get(EXTENSION_KEY)


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _direct_loopback_client() -> bool:
    """The TCP peer (before any ProxyFix rewrite) is loopback and no proxy forwarded the request."""
    original = request.environ.get("werkzeug.proxy_fix.orig") or {}
    address = original.get("REMOTE_ADDR") or request.environ.get("REMOTE_ADDR") or ""
    try:
        loopback = ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
    return loopback and not any(name in request.headers for name in _FORWARDING_HEADERS)


@bp.get(PATH)
@limiter.exempt
def metrics():
    """The Prometheus text exposition: with the admin token, or to a direct loopback client when none is set."""
    token = current_app.config["SETTINGS"].admin_token
    if token:
        header = request.headers.get("Authorization", "")
        given = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                "unauthorized",
                "Send the admin token as 'Authorization: Bearer <token>'.",
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not _direct_loopback_client():
        raise ApiError(
            "forbidden",
            "Metrics are served to loopback clients only; set CHATKIT_ADMIN_TOKEN to scrape from elsewhere.",
            403,
        )
    # 0.0.4: what every Prometheus version reads (our names need none of 1.0.0's escaping).
    from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

    body = current_app.extensions[EXTENSION_KEY].exposition()
    return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    """With CHATKIT_METRICS on: count every request and serve `GET /metrics`. Off: nothing exists."""
    settings = app.config["SETTINGS"]
    if not settings.metrics_enabled:
        return
    metrics = Metrics(settings.metrics_multiprocess_dir)
    app.extensions[EXTENSION_KEY] = metrics
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(metrics.observe)
    app.register_blueprint(bp)
