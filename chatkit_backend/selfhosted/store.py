"""`SqlStore`: ChatKit's `Store` on the service's SQL database, every row scoped to the user it belongs to.

Each async method runs one short synchronous Core function in the event loop's executor (a greenlet
under gevent, a thread elsewhere), so a query never holds the loop that serves every stream of the
worker. Another user's thread, item or attachment raises `NotFoundError`, exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from chatkit.store import NotFoundError, Store, StoreItemType
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata
from pydantic import TypeAdapter
from sqlalchemy import Connection, and_, delete, exists, insert, literal, select, update

from chatkit_backend.db import Database, dialect_insert
from chatkit_backend.selfhosted.context import RequestContext
from chatkit_backend.selfhosted.models import ATTACHMENTS, FEEDBACK, ITEMS, THREADS
from chatkit_backend.selfhosted.uploads import BlobStore

R = TypeVar("R")

# ChatKit's own pages are 20 long; a client may ask for more, never for an unbounded read.
MAX_PAGE = 100

_ITEM = TypeAdapter(ThreadItem)
_ATTACHMENT = TypeAdapter(Attachment)
_ID_PREFIXES = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}


def new_id(kind: str) -> str:
    """An id with the package's prefix and 128 random bits (the package's default has 32)."""
    return f"{_ID_PREFIXES.get(kind, kind)}_{uuid.uuid4().hex}"


def _now() -> datetime:
    return datetime.now(UTC)


class SqlStore(Store[RequestContext]):
    """Threads, items and attachment records in `chatkit_threads`, `chatkit_items`, `chatkit_attachments`."""

    def __init__(self, database: Database, blobs: BlobStore) -> None:
        self.database = database
        self.blobs = blobs

    # Ids: full 128-bit randomness (a collision would overwrite another thread through the upsert).

    def generate_thread_id(self, context: RequestContext) -> str:
        return new_id("thread")

    def generate_item_id(self, item_type: StoreItemType, thread: ThreadMetadata, context: RequestContext) -> str:
        return new_id(item_type)

    # Running the synchronous statements

    async def run_blocking(self, function: Callable[..., R], *args: Any) -> R:
        """`function(*args)` off the event loop (the blob store's reads and writes)."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))

    async def _read(self, function: Callable[..., R], *args: Any) -> R:
        def read() -> R:
            with self.database.engine.connect() as connection:
                return function(connection, *args)

        return await asyncio.get_running_loop().run_in_executor(None, read)

    async def _write(self, function: Callable[..., R], *args: Any) -> R:
        # One transaction through the service's one write path (off the gevent hub on SQLite).
        work = functools.partial(_with_connection_first, function, args)
        return await asyncio.get_running_loop().run_in_executor(None, self.database.write, work)

    # Threads

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        data = await self._read(_thread_data, thread_id, context.user)
        if data is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate_json(data)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        data = thread.model_dump_json(exclude={"items"})  # ChatKit has passed a whole Thread here before
        await self._write(_save_thread, thread.id, context.user, data)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        rows, has_more = await self._read(_page, THREADS, THREADS.c.owner == context.user, after, limit, order)
        threads = [ThreadMetadata.model_validate_json(row.data) for row in rows]
        return Page(data=threads, has_more=has_more, after=threads[-1].id if threads and has_more else None)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        attachment_ids = await self._write(_delete_thread, thread_id, context.user)
        await self.run_blocking(self.blobs.delete, attachment_ids)  # the bytes go with the thread

    # Items

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        scope = and_(ITEMS.c.thread_id == thread_id, ITEMS.c.owner == context.user)
        rows, has_more = await self._read(_page, ITEMS, scope, after, limit, order)
        if not rows and await self._read(_thread_data, thread_id, context.user) is None:
            raise NotFoundError(f"Thread {thread_id} not found")  # an empty page of another user's thread is a 404
        items = [_ITEM.validate_json(row.data) for row in rows]
        return Page(data=items, has_more=has_more, after=items[-1].id if items and has_more else None)

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        # An upsert: ChatKit may add the same item twice (a workflow item at the end of a run).
        await self.save_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        await self._write(_save_item, thread_id, context.user, item.id, item.type, item.model_dump_json())

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        data = await self._read(_item_data, thread_id, item_id, context.user)
        if data is None:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return _ITEM.validate_json(data)

    async def delete_thread_item(self, thread_id: str, item_id: str, context: RequestContext) -> None:
        await self._write(_delete_item, thread_id, item_id, context.user)

    # Attachment records (the bytes live with the attachment store)

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        await self._write(
            _save_attachment, attachment.id, context.user, attachment.thread_id, attachment.model_dump_json()
        )

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        data = await self._read(_attachment_data, attachment_id, context.user)
        if data is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return _ATTACHMENT.validate_json(data)

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        await self._write(_delete_attachment, attachment_id, context.user)

    # Feedback (items.feedback)

    async def save_feedback(self, thread_id: str, item_ids: list[str], kind: str, context: RequestContext) -> None:
        """Keep the user's verdict on items of their thread; an item not in that thread is NotFoundError."""
        await self._write(_save_feedback, thread_id, list(dict.fromkeys(item_ids)), kind, context.user)


# The synchronous statements, each given a connection.


def _with_connection_first(function: Callable[..., R], args: tuple[Any, ...], connection: Connection) -> R:
    return function(connection, *args)


def _thread_data(connection: Connection, thread_id: str, owner: str) -> str | None:
    query = select(THREADS.c.data).where(THREADS.c.id == thread_id, THREADS.c.owner == owner)
    return connection.execute(query).scalar()


def _save_thread(connection: Connection, thread_id: str, owner: str, data: str) -> None:
    now = _now()
    updated = connection.execute(
        update(THREADS).where(THREADS.c.id == thread_id, THREADS.c.owner == owner).values(data=data, updated_at=now)
    )
    if updated.rowcount == 0:
        # A new thread (ids are 128 random bits: another owner's row with this id does not exist).
        connection.execute(insert(THREADS).values(id=thread_id, owner=owner, created_at=now, updated_at=now, data=data))


def _page(connection: Connection, table, scope, after: str | None, limit: int, order: str) -> tuple[list[Any], bool]:
    """One page of `table`'s rows within `scope`, by insertion order, after the row with id `after`."""
    limit = max(1, min(int(limit), MAX_PAGE))
    descending = order == "desc"
    query = select(table.c.id, table.c.data).where(scope)
    if after is not None:
        cursor = select(table.c.seq).where(scope, table.c.id == after).scalar_subquery()
        query = query.where(table.c.seq < cursor if descending else table.c.seq > cursor)
    query = query.order_by(table.c.seq.desc() if descending else table.c.seq.asc()).limit(limit + 1)
    rows = connection.execute(query).all()
    return rows[:limit], len(rows) > limit


def _delete_thread(connection: Connection, thread_id: str, owner: str) -> list[str]:
    """Delete the thread, its items, feedback and attachment records; the attachments' ids, for their bytes."""
    owned = select(THREADS.c.id).where(THREADS.c.id == thread_id, THREADS.c.owner == owner)
    connection.execute(delete(ITEMS).where(ITEMS.c.thread_id.in_(owned)))
    connection.execute(delete(FEEDBACK).where(FEEDBACK.c.thread_id.in_(owned)))
    attachments = and_(ATTACHMENTS.c.thread_id == thread_id, ATTACHMENTS.c.owner == owner)
    attachment_ids = list(connection.execute(select(ATTACHMENTS.c.id).where(attachments)).scalars())
    connection.execute(delete(ATTACHMENTS).where(attachments))
    connection.execute(delete(THREADS).where(THREADS.c.id == thread_id, THREADS.c.owner == owner))
    return attachment_ids


def _save_feedback(connection: Connection, thread_id: str, item_ids: list[str], kind: str, owner: str) -> None:
    found = set(
        connection.execute(
            select(ITEMS.c.id).where(ITEMS.c.thread_id == thread_id, ITEMS.c.owner == owner, ITEMS.c.id.in_(item_ids))
        ).scalars()
    )
    if not item_ids or found != set(item_ids):
        raise NotFoundError(f"No such items in thread {thread_id}")
    now = _now()
    for item_id in item_ids:
        scope = and_(FEEDBACK.c.thread_id == thread_id, FEEDBACK.c.item_id == item_id)
        if not connection.execute(update(FEEDBACK).where(scope).values(kind=kind, created_at=now)).rowcount:
            connection.execute(
                insert(FEEDBACK).values(thread_id=thread_id, item_id=item_id, owner=owner, kind=kind, created_at=now)
            )


def _save_item(connection: Connection, thread_id: str, owner: str, item_id: str, kind: str, data: str) -> None:
    """Insert the item, or replace it in place (its seq, so its place in the thread, is kept): one statement.

    The row comes from a SELECT that yields nothing unless the thread is the owner's, so writing into
    another user's thread inserts nothing and is NotFoundError, like reading it.
    """
    thread_is_owned = exists().where(THREADS.c.id == thread_id, THREADS.c.owner == owner)
    row = select(
        *(
            literal(value, column.type)
            for value, column in (
                (thread_id, ITEMS.c.thread_id),
                (item_id, ITEMS.c.id),
                (owner, ITEMS.c.owner),
                (kind, ITEMS.c.type),
                (_now(), ITEMS.c.created_at),
                (data, ITEMS.c.data),
            )
        )
    ).where(thread_is_owned)
    statement = dialect_insert(connection, ITEMS).from_select(
        ["thread_id", "id", "owner", "type", "created_at", "data"], row
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ITEMS.c.thread_id, ITEMS.c.id],
        set_={"type": statement.excluded.type, "data": statement.excluded.data},
        where=ITEMS.c.owner == statement.excluded.owner,
    )
    # RETURNING, not rowcount: psycopg reports no row count for an INSERT … SELECT that inserted nothing.
    if connection.execute(statement.returning(ITEMS.c.seq)).first() is None:
        raise NotFoundError(f"Thread {thread_id} not found")


def _item_data(connection: Connection, thread_id: str, item_id: str, owner: str) -> str | None:
    query = select(ITEMS.c.data).where(ITEMS.c.thread_id == thread_id, ITEMS.c.id == item_id, ITEMS.c.owner == owner)
    return connection.execute(query).scalar()


def _delete_item(connection: Connection, thread_id: str, item_id: str, owner: str) -> None:
    connection.execute(
        delete(ITEMS).where(ITEMS.c.thread_id == thread_id, ITEMS.c.id == item_id, ITEMS.c.owner == owner)
    )


def _save_attachment(connection: Connection, attachment_id: str, owner: str, thread_id: str | None, data: str) -> None:
    scope = and_(ATTACHMENTS.c.id == attachment_id, ATTACHMENTS.c.owner == owner)
    if connection.execute(update(ATTACHMENTS).where(scope).values(thread_id=thread_id, data=data)).rowcount:
        return
    connection.execute(
        insert(ATTACHMENTS).values(id=attachment_id, owner=owner, thread_id=thread_id, created_at=_now(), data=data)
    )


def _attachment_data(connection: Connection, attachment_id: str, owner: str) -> str | None:
    query = select(ATTACHMENTS.c.data).where(ATTACHMENTS.c.id == attachment_id, ATTACHMENTS.c.owner == owner)
    return connection.execute(query).scalar()


def _delete_attachment(connection: Connection, attachment_id: str, owner: str) -> None:
    connection.execute(delete(ATTACHMENTS).where(ATTACHMENTS.c.id == attachment_id, ATTACHMENTS.c.owner == owner))
