"""Admin sign-ins ended by logout: a signed admin cookie whose id is listed here opens nothing."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from chatkit_backend.db import metadata

# In the database, not in a worker's memory: a logout must hold in every gunicorn worker and machine.
# A row is needed only until the cookie would have expired anyway (`expires_at`), then it is deleted.
ADMIN_REVOKED_COOKIES = Table(
    "admin_revoked_cookies",
    metadata,
    Column("cookie_id", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
