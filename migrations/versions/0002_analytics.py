"""Analytics: forwarded events, frontend error reports and error groups.

Revision ID: 0002_analytics
Revises: 0001_session_registry
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_analytics"
down_revision: str | None = "0001_session_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _client_columns() -> list[sa.Column]:
    return [
        sa.Column("client_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("client_address", sa.String(64), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=True),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("thread_id", sa.String(128), nullable=True),
        sa.Column("item_id", sa.String(128), nullable=True),
        *_client_columns(),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_analytics_events_event_key")),
    )
    op.create_index(op.f("ix_analytics_events_received_at"), "analytics_events", ["received_at"])
    op.create_index(op.f("ix_analytics_events_user_id"), "analytics_events", ["user_id"])
    op.create_table(
        "analytics_error_reports",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stack", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("component", sa.String(128), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        *_client_columns(),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_error_reports")),
        sa.UniqueConstraint("event_key", name=op.f("uq_analytics_error_reports_event_key")),
    )
    op.create_index(op.f("ix_analytics_error_reports_fingerprint"), "analytics_error_reports", ["fingerprint"])
    op.create_index(op.f("ix_analytics_error_reports_received_at"), "analytics_error_reports", ["received_at"])
    op.create_table(
        "analytics_error_groups",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("top_frame", sa.Text(), nullable=True),
        sa.Column("component", sa.String(128), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_analytics_error_groups")),
    )
    op.create_index(op.f("ix_analytics_error_groups_last_seen"), "analytics_error_groups", ["last_seen"])


def downgrade() -> None:
    op.drop_index(op.f("ix_analytics_error_groups_last_seen"), table_name="analytics_error_groups")
    op.drop_table("analytics_error_groups")
    op.drop_index(op.f("ix_analytics_error_reports_received_at"), table_name="analytics_error_reports")
    op.drop_index(op.f("ix_analytics_error_reports_fingerprint"), table_name="analytics_error_reports")
    op.drop_table("analytics_error_reports")
    op.drop_index(op.f("ix_analytics_events_user_id"), table_name="analytics_events")
    op.drop_index(op.f("ix_analytics_events_received_at"), table_name="analytics_events")
    op.drop_table("analytics_events")
