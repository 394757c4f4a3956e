"""Self-hosted ChatKit store: threads, items and attachments, owned by users.

Revision ID: 0003_chatkit_store
Revises: 0002_analytics
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_chatkit_store"
down_revision: str | None = "0002_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "chatkit_threads",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_chatkit_threads")),
        sa.UniqueConstraint("id", name=op.f("uq_chatkit_threads_id")),
    )
    op.create_index("ix_chatkit_threads_owner_seq", "chatkit_threads", ["owner", "seq"])
    op.create_table(
        "chatkit_items",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("thread_id", ID, nullable=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["chatkit_threads.id"],
            name=op.f("fk_chatkit_items_thread_id_chatkit_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_chatkit_items")),
        sa.UniqueConstraint("thread_id", "id", name="uq_chatkit_items_thread_id_id"),
    )
    op.create_index("ix_chatkit_items_thread_id_seq", "chatkit_items", ["thread_id", "seq"])
    op.create_table(
        "chatkit_attachments",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("thread_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chatkit_attachments")),
    )
    op.create_index(op.f("ix_chatkit_attachments_owner"), "chatkit_attachments", ["owner"])
    op.create_index(op.f("ix_chatkit_attachments_thread_id"), "chatkit_attachments", ["thread_id"])


def downgrade() -> None:
    op.drop_table("chatkit_attachments")
    op.drop_table("chatkit_items")
    op.drop_table("chatkit_threads")
