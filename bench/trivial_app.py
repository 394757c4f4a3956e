"""Bench-only WSGI module: the product app exactly as `wsgi.py` builds it, plus one trivial JSON route.

`POST /bench/trivial` parses a small JSON body and answers `{"status": "ok"}`; `POST /bench/upstream`
creates one upstream session through a pooled `requests.Session` (the session route minus identity,
registry and retries). It runs through every
hook the product installs (request id, JSON access log, security headers, limiter), so it is this
framework's ceiling on this machine; analytics ingest is compared with it on the same server.
Kept out of the product package on purpose: `gunicorn bench.trivial_app:app`.
"""

from __future__ import annotations

import requests
from flask import request
from requests.adapters import HTTPAdapter

from bench import PASSTHROUGH_PATH, TRIVIAL_PATH
from wsgi import app

_settings = app.config["SETTINGS"]
# Sized like the product's upstream pool (CHATKIT_UPSTREAM_POOL_SIZE), one per worker process.
_upstream = requests.Session()
_upstream.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=_settings.upstream_pool_size))


@app.post(TRIVIAL_PATH)
def bench_trivial():
    request.get_json(silent=True)
    return {"status": "ok"}


@app.post(PASSTHROUGH_PATH)
def bench_upstream_passthrough():
    """One upstream session create through a pooled requests.Session, nothing else: what gunicorn's
    worker class, threads and the pool allow for the session route, measurable before it exists."""
    answer = _upstream.post(
        f"{_settings.api_base}/v1/chatkit/sessions",
        json={"workflow": {"id": _settings.workflow_id}, "user": "bench-user"},
        headers={"Authorization": f"Bearer {_settings.openai_api_key}", "OpenAI-Beta": "chatkit_beta=v1"},
        timeout=(_settings.upstream_connect_timeout, _settings.upstream_read_timeout),
    )
    body = answer.json()
    if answer.status_code != 200:
        return {"error": body.get("error")}, answer.status_code
    return {"client_secret": body["client_secret"], "expires_at": body["expires_at"]}


__all__ = ["PASSTHROUGH_PATH", "TRIVIAL_PATH", "app"]
