"""Reading analytics back: the admin summary (conversation figures included), error groups, exports, retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, distinct, exists, func, literal_column, select

from chatkit_backend.analytics.models import ERRORS, EVENTS, GROUPS
from chatkit_backend.selfhosted.models import ATTACHMENT_BLOBS, ATTACHMENTS, FEEDBACK, ITEMS, THREADS, TURNS
from chatkit_backend.sessions.models import SESSIONS

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 2000
EXPORT_TABLES = {"events": EVENTS, "errors": ERRORS}


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time; naive values are UTC. Raises ValueError."""
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def bucket_start(value: datetime, bucket: str) -> datetime:
    value = as_utc(value)
    return (
        value.replace(minute=0, second=0, microsecond=0)
        if bucket == "hour"
        else value.replace(hour=0, minute=0, second=0, microsecond=0)
    )


def _bucket_label(connection: Connection, column: ColumnElement[Any], bucket: str) -> ColumnElement[str]:
    """The bucket a timestamp falls in, as text 'YYYY-MM-DD HH', computed by the database."""
    if connection.dialect.name == "postgresql":
        fmt = "YYYY-MM-DD HH24" if bucket == "hour" else "YYYY-MM-DD"
        return func.to_char(func.timezone("UTC", column), fmt)
    return func.strftime("%Y-%m-%d %H" if bucket == "hour" else "%Y-%m-%d", column)


def _label_of(moment: datetime, bucket: str) -> str:
    return moment.strftime("%Y-%m-%d %H" if bucket == "hour" else "%Y-%m-%d")


def summary(connection: Connection, since: datetime, until: datetime, bucket: str, top: int = 10) -> dict[str, Any]:
    """Counts per kind per bucket, sessions issued per bucket, distinct users and the top error groups."""
    starts = []
    moment = bucket_start(since, bucket)
    while moment < until:
        starts.append(moment)
        moment += BUCKETS[bucket]
    index = {_label_of(start, bucket): i for i, start in enumerate(starts)}
    series: dict[str, list[int]] = {}

    def fill(name: str, label: str, count: int) -> None:
        if label in index:
            series.setdefault(name, [0] * len(starts))[index[label]] += count

    in_range = (EVENTS.c.received_at >= since) & (EVENTS.c.received_at < until)
    label = _bucket_label(connection, EVENTS.c.received_at, bucket).label("bucket")
    for kind, bucket_label, count in connection.execute(
        select(EVENTS.c.kind, label, func.count()).where(in_range).group_by(EVENTS.c.kind, literal_column("bucket"))
    ):
        fill(kind, bucket_label, count)
    session_label = _bucket_label(connection, SESSIONS.c.created_at, bucket).label("bucket")
    sessions_in_range = (SESSIONS.c.created_at >= since) & (SESSIONS.c.created_at < until)
    for bucket_label, count in connection.execute(
        select(session_label, func.count()).where(sessions_in_range).group_by(literal_column("bucket"))
    ):
        fill("sessions", bucket_label, count)
    for name in ("sessions", "message", "thread_change"):
        series.setdefault(name, [0] * len(starts))
    users = connection.execute(select(func.count(distinct(EVENTS.c.user_id))).where(in_range)).scalar_one()
    errors_in_range = (ERRORS.c.received_at >= since) & (ERRORS.c.received_at < until)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket": bucket,
        "buckets": [start.isoformat() for start in starts],
        "counts": series,
        "totals": {name: sum(values) for name, values in series.items()},
        "distinct_users": users,
        "sessions_issued": sum(series["sessions"]),
        "error_reports": connection.execute(select(func.count()).where(errors_in_range)).scalar_one(),
        "top_errors": error_groups(connection, limit=top, since=since, until=until)[1],
        "conversations": conversations(connection, since, until, bucket, index),
    }


def conversations(
    connection: Connection, since: datetime, until: datetime, bucket: str, index: dict[str, int]
) -> dict[str, Any]:
    """The self-hosted server's figures in the range: threads started, turns, errors, tokens, feedback, first token."""
    turns = (TURNS.c.started_at >= since) & (TURNS.c.started_at < until)
    failed = TURNS.c.error.isnot(None) & (TURNS.c.error != "cancelled")
    totals = connection.execute(
        select(
            func.count(),
            func.count().filter(failed),
            func.coalesce(func.sum(TURNS.c.input_tokens), 0),
            func.coalesce(func.sum(TURNS.c.output_tokens), 0),
        ).where(turns)
    ).one()
    threads = connection.execute(
        select(func.count()).where((THREADS.c.created_at >= since) & (THREADS.c.created_at < until))
    ).scalar_one()
    feedback = dict(
        connection.execute(
            select(FEEDBACK.c.kind, func.count())
            .where((FEEDBACK.c.created_at >= since) & (FEEDBACK.c.created_at < until))
            .group_by(FEEDBACK.c.kind)
        ).all()
    )
    series = {name: [0] * len(index) for name in ("turns", "model_errors", "tokens")}
    label = _bucket_label(connection, TURNS.c.started_at, bucket).label("bucket")
    for bucket_label, count, errors, tokens in connection.execute(
        select(
            label,
            func.count(),
            func.count().filter(failed),
            func.coalesce(func.sum(TURNS.c.input_tokens + TURNS.c.output_tokens), 0),
        )
        .where(turns)
        .group_by(literal_column("bucket"))
    ):
        if bucket_label in index:
            for name, value in (("turns", count), ("model_errors", errors), ("tokens", tokens)):
                series[name][index[bucket_label]] += int(value)
    return {
        "threads": threads,
        "turns": totals[0],
        "model_errors": totals[1],
        "input_tokens": int(totals[2]),
        "output_tokens": int(totals[3]),
        "feedback": {"positive": feedback.get("positive", 0), "negative": feedback.get("negative", 0)},
        "first_token_ms": {"p50": _percentile(connection, turns, 50), "p95": _percentile(connection, turns, 95)},
        "series": series,
    }


def _percentile(connection: Connection, condition: ColumnElement[bool], percent: int) -> int | None:
    """The nearest-rank percentile of time to first token (the same query on SQLite and PostgreSQL)."""
    measured = condition & TURNS.c.first_token_ms.isnot(None)
    count = connection.execute(select(func.count()).where(measured)).scalar_one()
    if not count:
        return None
    rank = max(1, -(-count * percent // 100))  # ceil(count * percent / 100)
    query = select(TURNS.c.first_token_ms).where(measured).order_by(TURNS.c.first_token_ms).offset(rank - 1).limit(1)
    return connection.execute(query).scalar_one()


def _group_json(row: Any) -> dict[str, Any]:
    return {
        "fingerprint": row.fingerprint,
        "message": row.message,
        "top_frame": row.top_frame,
        "component": row.component,
        "level": row.level,
        "count": row.count,
        "first_seen": as_utc(row.first_seen).isoformat(),
        "last_seen": as_utc(row.last_seen).isoformat(),
    }


def error_groups(
    connection: Connection,
    *,
    limit: int,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of error groups seen in the range, most frequent first."""
    condition = GROUPS.c.count > 0
    if since is not None:
        condition = condition & (GROUPS.c.last_seen >= since)
    if until is not None:
        condition = condition & (GROUPS.c.first_seen < until)
    total = connection.execute(select(func.count()).select_from(GROUPS).where(condition)).scalar_one()
    rows = connection.execute(
        select(GROUPS)
        .where(condition)
        .order_by(GROUPS.c.count.desc(), GROUPS.c.last_seen.desc(), GROUPS.c.fingerprint)
        .limit(limit)
        .offset(offset)
    )
    return total, [_group_json(row) for row in rows]


def _time_filter(table: Table, since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    condition = table.c.id.isnot(None)
    if since is not None:
        condition = condition & (table.c.received_at >= since)
    if until is not None:
        condition = condition & (table.c.received_at < until)
    return condition


def count_rows(connection: Connection, name: str, since: datetime | None, until: datetime | None) -> int:
    table = EXPORT_TABLES[name]
    return connection.execute(select(func.count()).where(_time_filter(table, since, until))).scalar_one()


def export_rows(
    connection: Connection, name: str, since: datetime | None, until: datetime | None
) -> Iterator[dict[str, Any]]:
    """Rows of `events` or `errors` in the range, oldest first, streamed."""
    table = EXPORT_TABLES[name]
    query = select(table).where(_time_filter(table, since, until)).order_by(table.c.id)
    for row in connection.execution_options(yield_per=1000).execute(query):
        yield {
            key: as_utc(value).isoformat() if isinstance(value, datetime) else value
            for key, value in row._mapping.items()
            if key != "scope"  # an internal keyed hash, of no use outside
        }


def prune(connection: Connection, before: datetime) -> tuple[dict[str, int], list[str]]:
    """Delete what is older than `before`: events, error reports and groups, expired sessions, and conversations
    untouched since (threads with their items, feedback and attachments), turns and unsent uploads.

    Returns counts per table and the ids of the deleted attachments (their bytes may live outside the database).
    """
    counts = {
        "events": connection.execute(delete(EVENTS).where(EVENTS.c.received_at < before)).rowcount,
        "errors": connection.execute(delete(ERRORS).where(ERRORS.c.received_at < before)).rowcount,
        "error_groups": connection.execute(delete(GROUPS).where(GROUPS.c.last_seen < before)).rowcount,
        # Issued sessions: only ones long expired (a live one may still be refreshed or cancelled).
        "sessions": connection.execute(delete(SESSIONS).where(SESSIONS.c.expires_at < before)).rowcount,
    }
    # A thread is old when neither it nor any of its items changed since `before`.
    recent_item = exists().where(and_(ITEMS.c.thread_id == THREADS.c.id, ITEMS.c.created_at >= before))
    old_threads = select(THREADS.c.id).where(THREADS.c.updated_at < before, ~recent_item)
    old_ids = list(connection.execute(old_threads).scalars())
    old_attachments = (ATTACHMENTS.c.thread_id.in_(old_ids)) | (
        ATTACHMENTS.c.thread_id.is_(None) & (ATTACHMENTS.c.created_at < before)
    )
    attachment_ids = list(connection.execute(select(ATTACHMENTS.c.id).where(old_attachments)).scalars())
    counts["conversations"] = 0
    for chunk in range(0, len(old_ids), 500):
        ids = old_ids[chunk : chunk + 500]
        counts["items"] = (
            counts.get("items", 0) + connection.execute(delete(ITEMS).where(ITEMS.c.thread_id.in_(ids))).rowcount
        )
        connection.execute(delete(FEEDBACK).where(FEEDBACK.c.thread_id.in_(ids)))
        counts["conversations"] += connection.execute(delete(THREADS).where(THREADS.c.id.in_(ids))).rowcount
    counts.setdefault("items", 0)
    for chunk in range(0, len(attachment_ids), 500):
        ids = attachment_ids[chunk : chunk + 500]
        connection.execute(delete(ATTACHMENTS).where(ATTACHMENTS.c.id.in_(ids)))
        connection.execute(delete(ATTACHMENT_BLOBS).where(ATTACHMENT_BLOBS.c.id.in_(ids)))
    counts["attachments"] = len(attachment_ids)
    counts["feedback"] = connection.execute(delete(FEEDBACK).where(FEEDBACK.c.created_at < before)).rowcount
    counts["turns"] = connection.execute(delete(TURNS).where(TURNS.c.started_at < before)).rowcount
    return counts, attachment_ids
