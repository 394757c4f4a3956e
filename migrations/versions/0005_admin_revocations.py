"""Admin cookies revoked by logout, kept until they would have expired.

Revision ID: 0005_admin_revocations
Revises: 0004_event_id_scope
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_admin_revocations"
down_revision: str | None = "0004_event_id_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_revoked_cookies",
        sa.Column("cookie_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cookie_id", name=op.f("pk_admin_revoked_cookies")),
    )
    op.create_index(op.f("ix_admin_revoked_cookies_expires_at"), "admin_revoked_cookies", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_revoked_cookies_expires_at"), table_name="admin_revoked_cookies")
    op.drop_table("admin_revoked_cookies")
