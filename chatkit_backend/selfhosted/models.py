"""The self-hosted ChatKit store's tables: threads, items, attachments and what is measured of them, per user.

Rows hold the package's own JSON (`data`); `seq` is the order of insertion, which is how ChatKit
pages threads and items (its `created_at` values are naive local times and may tie).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from chatkit_backend.db import metadata

SEQ = BigInteger().with_variant(Integer(), "sqlite")
# Assistant message ids are the Responses API's (`msg_` + ~48 characters); ours are 36.
ID = String(128)

THREADS = Table(
    "chatkit_threads",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", ID, nullable=False, unique=True),
    Column("owner", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_chatkit_threads_owner_seq", "owner", "seq"),
)

ITEMS = Table(
    "chatkit_items",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("thread_id", ID, ForeignKey("chatkit_threads.id", ondelete="CASCADE"), nullable=False),
    Column("id", ID, nullable=False),
    Column("owner", String(255), nullable=False),
    Column("type", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("thread_id", "id", name="uq_chatkit_items_thread_id_id"),
    Index("ix_chatkit_items_thread_id_seq", "thread_id", "seq"),
)

ATTACHMENTS = Table(
    "chatkit_attachments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("thread_id", ID, nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
)

# The bytes of uploads kept in the database (CHATKIT_UPLOAD_FOLDER unset), one row per attachment.
ATTACHMENT_BLOBS = Table(
    "chatkit_attachment_blobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# items.feedback: the latest verdict of a user on an item of their thread.
FEEDBACK = Table(
    "chatkit_feedback",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("thread_id", ID, nullable=False),
    Column("item_id", ID, nullable=False),
    Column("owner", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    UniqueConstraint("thread_id", "item_id", name="uq_chatkit_feedback_thread_id_item_id"),
)

# One row per model turn (one respond(): every model request of a run, tool calls included).
TURNS = Table(
    "chatkit_turns",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("thread_id", ID, nullable=False, index=True),
    Column("owner", String(255), nullable=False),
    Column("model", String(255), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("first_token_ms", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("error", String(40), nullable=True),
)
