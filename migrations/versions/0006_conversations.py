"""Self-hosted ChatKit: upload bytes, feedback and per-turn figures.

Revision ID: 0006_conversations
Revises: 0005_admin_revocations
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_conversations"
down_revision: str | None = "0005_admin_revocations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "chatkit_attachment_blobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chatkit_attachment_blobs")),
    )
    op.create_table(
        "chatkit_feedback",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("thread_id", ID, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_chatkit_feedback")),
        sa.UniqueConstraint("thread_id", "item_id", name="uq_chatkit_feedback_thread_id_item_id"),
    )
    op.create_index(op.f("ix_chatkit_feedback_created_at"), "chatkit_feedback", ["created_at"])
    op.create_table(
        "chatkit_turns",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("thread_id", ID, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("first_token_ms", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_chatkit_turns")),
    )
    op.create_index(op.f("ix_chatkit_turns_started_at"), "chatkit_turns", ["started_at"])
    op.create_index(op.f("ix_chatkit_turns_thread_id"), "chatkit_turns", ["thread_id"])


def downgrade() -> None:
    op.drop_table("chatkit_turns")
    op.drop_table("chatkit_feedback")
    op.drop_table("chatkit_attachment_blobs")
