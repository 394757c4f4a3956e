"""Analytics tables: forwarded events, frontend error reports, and error groups by fingerprint.

Every event and report carries `event_key`, unique: the client's `id` when it sent one (so a
retried POST is stored once), a server-made id otherwise (so a spool replay is stored once).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chatkit_backend.db import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AnalyticsEvent(Base):
    """One event the page forwarded (a message, a thread change, a ChatKit log line, ...)."""

    __tablename__ = "analytics_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    thread_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    item_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    client_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    extra: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)


class ErrorReport(Base):
    """One scrubbed frontend error report; `fingerprint` links it to its ErrorGroup."""

    __tablename__ = "analytics_error_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(160), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text)
    stack: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    component: Mapped[str | None] = mapped_column(String(128), nullable=True)
    level: Mapped[str] = mapped_column(String(16))
    context: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    client_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extra: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)


class ErrorGroup(Base):
    """Error reports with the same fingerprint (normalised message + top stack frame)."""

    __tablename__ = "analytics_error_groups"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    top_frame: Mapped[str | None] = mapped_column(Text, nullable=True)
    component: Mapped[str | None] = mapped_column(String(128), nullable=True)
    level: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
