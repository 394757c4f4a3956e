"""The registry of ChatKit sessions this service issued. Holds a hash of each client secret, never the secret."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from chatkit_backend.db import metadata

# One ChatKit session created for a user; `replaced_by` links a refreshed session to its successor.
SESSIONS = Table(
    "chatkit_sessions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("workflow_id", String(128), nullable=False),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("replaced_by", String(128), nullable=True),
)
