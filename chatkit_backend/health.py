"""Liveness (`/health`, the seeds' contract) and readiness (`/ready`, with a check per dependency)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify

from chatkit_backend.db import get_db
from chatkit_backend.rate_limits import limiter, storage_is_healthy

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/health")
@limiter.exempt
def health():
    """Cheap liveness: the process answers. No dependency is touched."""
    return {"status": "healthy"}


@bp.get("/ready")
@limiter.exempt
def ready():
    """Readiness: database reachable, rate-limit storage reachable, what the ChatKit mode needs configured."""
    settings = current_app.config["SETTINGS"]
    checks: dict[str, dict[str, object]] = {}
    try:
        get_db().ping()
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = {"ok": False, "message": "database unreachable"}
    if storage_is_healthy():
        checks["rate_limit_storage"] = {"ok": True}
    else:
        checks["rate_limit_storage"] = {
            "ok": False,
            "message": "rate-limit storage unreachable; limits are counted in memory per process",
        }
    missing = settings.missing_chatkit_settings
    checks["chatkit_credentials"] = (
        {"ok": True, "mode": settings.chatkit_mode}
        if not missing
        else {"ok": False, "mode": settings.chatkit_mode, "message": "not configured: " + ", ".join(missing)}
    )
    # Without Redis the limits still hold per process, so the service is degraded, not unready.
    ready_now = checks["database"]["ok"] and checks["chatkit_credentials"]["ok"]
    status = "not_ready" if not ready_now else "ready" if checks["rate_limit_storage"]["ok"] else "degraded"
    return jsonify(status=status, checks=checks), 200 if ready_now else 503


def init_app(app: Flask) -> None:
    """Register /health and /ready."""
    app.register_blueprint(bp)
