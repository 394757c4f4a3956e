"""Bench-only WSGI module: the product app exactly as `wsgi.py` builds it, plus one trivial JSON route.

`POST /bench/trivial` parses a small JSON body and answers `{"status": "ok"}`. It runs through every
hook the product installs (request id, JSON access log, security headers, limiter), so it is this
framework's ceiling on this machine; analytics ingest is compared with it on the same server.
Kept out of the product package on purpose: `gunicorn bench.trivial_app:app`.
"""

from __future__ import annotations

from flask import request

from bench import TRIVIAL_PATH
from wsgi import app


@app.post(TRIVIAL_PATH)
def bench_trivial():
    request.get_json(silent=True)
    return {"status": "ok"}


__all__ = ["TRIVIAL_PATH", "app"]
