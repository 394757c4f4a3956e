"""Admin API (`/api/admin/...`) and the dashboard page (`/admin`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for

from chatkit_backend.admin import auth
from chatkit_backend.admin.charts import bar_chart
from chatkit_backend.analytics import queries
from chatkit_backend.db import get_db
from chatkit_backend.errors import ApiError, validation_error
from chatkit_backend.http_security import is_same_origin_request
from chatkit_backend.query_numbers import whole_number
from chatkit_backend.rate_limits import limiter

api_bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
pages_bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")

CHARTS = (("sessions", "Sessions issued"), ("message", "Messages"), ("thread_change", "Thread changes"))
# The self-hosted server's own figures (summary["conversations"]["series"]).
CONVERSATION_CHARTS = (("turns", "Model turns"), ("model_errors", "Model errors"), ("tokens", "Tokens (in + out)"))


def _summary_range() -> tuple[datetime, datetime, str]:
    """since/until/bucket from the query string, validated; defaults: the last 7 days by day, 24 hours by hour."""
    problems = []
    bucket = request.args.get("bucket", "day")
    if bucket not in queries.BUCKETS:
        problems.append({"field": "bucket", "message": "must be hour or day"})
        bucket = "day"
    times: dict[str, datetime | None] = {}
    for field in ("since", "until"):
        raw = request.args.get(field)
        try:
            times[field] = queries.parse_time(raw) if raw else None
        except ValueError:
            problems.append({"field": field, "message": "must be an ISO 8601 date or date-time"})
            times[field] = None
    until = times["until"] or datetime.now(UTC)
    since = times["since"] or until - queries.BUCKETS[bucket] * (7 if bucket == "day" else 24)
    if since >= until:
        problems.append({"field": "since", "message": "must be before until"})
    elif (until - since) / queries.BUCKETS[bucket] > queries.MAX_BUCKETS:
        problems.append({"field": "since", "message": f"the range may span at most {queries.MAX_BUCKETS} buckets"})
    if problems:
        raise validation_error(problems)
    return since, until, bucket


MAX_PAGE = 1_000_000
MAX_PER_PAGE = 200


def _page_args() -> tuple[int, int]:
    problems: list[dict[str, Any]] = []
    values = {}
    for field, default, top in (("page", 1, MAX_PAGE), ("per_page", 50, MAX_PER_PAGE)):
        try:
            values[field] = whole_number(request.args, field, default, minimum=1, maximum=top)
        except ApiError as error:
            problems += error.details or []
    if problems:
        raise validation_error(problems)
    return values["page"], values["per_page"]


def _summary() -> dict[str, Any]:
    since, until, bucket = _summary_range()
    with get_db().engine.connect() as connection:
        return queries.summary(connection, since, until, bucket)


@api_bp.get("/analytics/summary")
@auth.admin_required
def summary():
    """Counts per kind per bucket, distinct users, sessions issued, the top error groups and conversation figures."""
    return _summary()


@api_bp.get("/errors")
@auth.admin_required
def errors():
    """Error groups, most frequent first, paged with `page` and `per_page`."""
    page, per_page = _page_args()
    with get_db().engine.connect() as connection:
        total, items = queries.error_groups(connection, limit=per_page, offset=(page - 1) * per_page)
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@api_bp.after_request
def _no_store(response: Response) -> Response:
    """Admin answers (pages and JSON) are never kept by a browser or shared cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


pages_bp.after_request(_no_store)


@pages_bp.get("")
def dashboard():
    """The dashboard when signed in; the sign-in form otherwise."""
    if not auth.cookie_is_valid():
        return make_response(render_template("admin/login.html", failed=False))
    data = _summary()
    labels = [label[: 13 if data["bucket"] == "hour" else 10].replace("T", " ") for label in data["buckets"]]
    charts = [bar_chart(key, title, labels, data["counts"].get(key, [0] * len(labels))) for key, title in CHARTS]
    series = data["conversations"]["series"]
    charts += [bar_chart(key, title, labels, series[key]) for key, title in CONVERSATION_CHARTS]
    page = render_template("admin/dashboard.html", data=data, charts=charts, csrf_token=auth.csrf_token())
    return page


def _cookie_is_secure() -> bool:
    # Secure in production even when TLS ends at a proxy that is not trusted (TRUSTED_PROXY_HOPS=0).
    return request.is_secure or current_app.config["SETTINGS"].env == "production"


@pages_bp.post("/login")
@limiter.limit("10/minute")
def login():
    """Exchange the admin token for an HttpOnly, SameSite=Strict cookie."""
    # Login CSRF: no origin may post here but the service's own (CORS_ORIGINS do not count); such a
    # post is not counted as a failure, so another site cannot lock the operator out.
    if not is_same_origin_request():
        return make_response(render_template("admin/login.html", failed=True), 401)
    retry_after = auth.failures_retry_after()
    if retry_after is not None:
        raise auth.too_many_failures(retry_after)  # JSON, like the login's own rate limit
    if not auth.token_matches(request.form.get("token")):
        auth.record_failure()
        return make_response(render_template("admin/login.html", failed=True), 401)
    response = redirect(url_for("admin.dashboard"), 303)
    response.set_cookie(
        auth.COOKIE_NAME,
        auth.new_cookie_value(),
        max_age=auth.COOKIE_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=_cookie_is_secure(),
        path="/",
    )
    return response


@pages_bp.post("/logout")
def logout():
    """Revoke the admin cookie server-side and clear it (needs the form's CSRF token)."""
    if not auth.csrf_is_valid():
        return make_response(render_template("admin/login.html", failed=False), 403)
    auth.revoke_cookie()
    response = redirect(url_for("admin.dashboard"), 303)
    response.delete_cookie(auth.COOKIE_NAME, path="/", httponly=True, samesite="Strict", secure=_cookie_is_secure())
    return response
