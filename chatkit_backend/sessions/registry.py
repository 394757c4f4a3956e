"""The registry of sessions this service issued: who got which session, and a SHA-256 of its secret."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update

from chatkit_backend.db import Database, GroupCommitter
from chatkit_backend.sessions.models import SESSIONS
from chatkit_backend.upstream import ChatKitSession

# Built once: a statement built per request (`insert(...).values(...)`) costs more than the insert.
_INSERT = insert(SESSIONS)
# Below gunicorn's 30 s worker timeout; SQLite's busy timeout is 15 s.
RECORD_WAIT_SECONDS = 20.0


def secret_digest(client_secret: str) -> str:
    """What the registry keeps instead of a client secret."""
    return hashlib.sha256(client_secret.encode()).hexdigest()


class SessionRegistry:
    """Reads and writes `chatkit_sessions`; never sees more of a secret than its digest."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, session: ChatKitSession, user: str) -> None:
        """Remember a session just created for `user`; returns once the row is committed.

        Rows from concurrent requests share one transaction (the database's group committer): one
        commit instead of each request's own, and no queue of threads on SQLite's write lock or the
        connection pool. An error or a timeout of that commit raises here, as a failed insert did.
        """
        row = {
            "id": session.id,
            "user_id": user,
            "secret_sha256": secret_digest(session.client_secret),
            "workflow_id": session.workflow_id,
            "status": "active",
            "created_at": datetime.now(UTC),
            "expires_at": datetime.fromtimestamp(session.expires_at, UTC),
            "cancelled_at": None,
            "replaced_by": None,
        }
        self._committer().submit([row])

    def _committer(self) -> GroupCommitter[dict[str, Any]]:
        database = self.database

        def insert_rows(rows: list[dict[str, Any]]) -> None:
            database.write(lambda connection: connection.execute(_INSERT, rows))  # one executemany per batch

        return database.committer("session-registry-committer", insert_rows, wait_seconds=RECORD_WAIT_SECONDS)

    def find_by_secret(self, client_secret: str) -> Row[Any] | None:
        """The issued session (a row of `chatkit_sessions`) with this secret, whoever it belongs to."""
        query = select(SESSIONS).where(SESSIONS.c.secret_sha256 == secret_digest(client_secret))
        with self.database.engine.connect() as connection:
            return connection.execute(query).first()

    def active_for(self, user: str) -> list[Row[Any]]:
        """`user`'s sessions (rows of `chatkit_sessions`) that are neither cancelled nor expired."""
        query = select(SESSIONS).where(
            SESSIONS.c.user_id == user,
            SESSIONS.c.status == "active",
            SESSIONS.c.expires_at > datetime.now(UTC),
        )
        with self.database.engine.connect() as connection:
            return list(connection.execute(query.order_by(SESSIONS.c.created_at)))

    def mark_cancelled(self, session_id: str, *, replaced_by: str | None = None) -> None:
        """Record that a session was cancelled (by a refresh, when `replaced_by` is set, or by logout)."""
        statement = (
            update(SESSIONS)
            .where(SESSIONS.c.id == session_id)
            .values(status="cancelled", cancelled_at=datetime.now(UTC), replaced_by=replaced_by)
        )
        self.database.write(lambda connection: connection.execute(statement))
