"""The self-hosted ChatKit store's tables: threads and their items, each row owned by one user.

Rows hold the package's own JSON (`data`); `seq` is the order of insertion, which is how ChatKit
pages threads and items (its `created_at` values are naive local times and may tie).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

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
