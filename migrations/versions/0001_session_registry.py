"""Session registry: the ChatKit sessions this service issued.

Revision ID: 0001_session_registry
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_session_registry"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chatkit_sessions",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chatkit_sessions")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_chatkit_sessions_secret_sha256")),
    )
    op.create_index(op.f("ix_chatkit_sessions_user_id"), "chatkit_sessions", ["user_id"])
    op.create_index(op.f("ix_chatkit_sessions_created_at"), "chatkit_sessions", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_chatkit_sessions_created_at"), table_name="chatkit_sessions")
    op.drop_index(op.f("ix_chatkit_sessions_user_id"), table_name="chatkit_sessions")
    op.drop_table("chatkit_sessions")
