"""Analytics tables: forwarded events, frontend error reports, and error groups by fingerprint.

Every event and report carries `event_key`: the client's `id` when it sent one (so a retried POST is
stored once), a server-made id otherwise (so a spool replay is stored once). It is unique within its
`scope`, the sender (a keyed hash of the user, or of the address when anonymous): another user's
event with the same client id is another event. Rows stored before scopes existed have scope ''.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, String, Table, Text, UniqueConstraint

from chatkit_backend.db import metadata

SCOPE_LENGTH = 32  # hex characters of the scope's HMAC (128 bits)
LEGACY_SCOPE = ""  # rows (and spooled rows) from before scopes


def _scope_columns(table: str) -> tuple[Column, UniqueConstraint]:
    return (
        Column("scope", String(SCOPE_LENGTH), nullable=False, server_default=LEGACY_SCOPE),
        UniqueConstraint("scope", "event_key", name=f"uq_{table}_scope_event_key"),
    )


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# One event the page forwarded (a message, a thread change, a ChatKit log line, ...).
EVENTS = Table(
    "analytics_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_key", String(160), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("event", String(64), nullable=True),
    Column("name", String(128), nullable=True),
    Column("thread_id", String(128), nullable=True),
    Column("item_id", String(128), nullable=True),
    Column("client_timestamp", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("user_id", String(255), nullable=True, index=True),
    Column("request_id", String(128), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("data", JSON(none_as_null=True), nullable=True),
    Column("extra", JSON(none_as_null=True), nullable=True),
    *_scope_columns("analytics_events"),
)

# One scrubbed frontend error report; `fingerprint` links it to its row in GROUPS.
ERRORS = Table(
    "analytics_error_reports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_key", String(160), nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("message", Text, nullable=False),
    Column("stack", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("component", String(128), nullable=True),
    Column("level", String(16), nullable=False),
    Column("context", JSON(none_as_null=True), nullable=True),
    Column("client_timestamp", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("user_id", String(255), nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("extra", JSON(none_as_null=True), nullable=True),
    *_scope_columns("analytics_error_reports"),
)

# Error reports with the same fingerprint (normalised message + top stack frame).
GROUPS = Table(
    "analytics_error_groups",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("message", Text, nullable=False),
    Column("top_frame", Text, nullable=True),
    Column("component", String(128), nullable=True),
    Column("level", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False, index=True),
)
