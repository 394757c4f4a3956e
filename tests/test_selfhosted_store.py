"""SqlStore, ChatKit's Store on SQL: paging both ways, upserts, owners and cascade delete, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from sqlalchemy import func, select

from chatkit_backend.db import Database
from chatkit_backend.selfhosted.context import RequestContext
from chatkit_backend.selfhosted.models import ITEMS
from chatkit_backend.selfhosted.store import MAX_PAGE, SqlStore
from chatkit_backend.selfhosted.uploads import DatabaseBlobs

ALICE = RequestContext(user="alice")
BOB = RequestContext(user="bob")


@pytest.fixture
def store(database_url):
    database = Database(database_url)
    yield SqlStore(database, DatabaseBlobs(database))
    database.engine.dispose()


def run(coroutine):
    return asyncio.run(coroutine)


def new_thread(store: SqlStore, context: RequestContext, title: str | None = None) -> ThreadMetadata:
    thread = ThreadMetadata(id=store.generate_thread_id(context), created_at=datetime.now(), title=title)
    run(store.save_thread(thread, context))
    return thread


def user_message(store: SqlStore, thread: ThreadMetadata, text: str, context: RequestContext = ALICE):
    return UserMessageItem(
        id=store.generate_item_id("message", thread, context),
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        inference_options={},
    )


def texts(page) -> list[str]:
    return [item.content[0].text for item in page.data]


def test_items_page_in_insertion_order_both_ways(store):
    thread = new_thread(store, ALICE)
    for n in range(5):
        run(store.add_thread_item(thread.id, user_message(store, thread, f"m{n}"), ALICE))

    first = run(store.load_thread_items(thread.id, None, 2, "asc", ALICE))
    second = run(store.load_thread_items(thread.id, first.after, 2, "asc", ALICE))
    third = run(store.load_thread_items(thread.id, second.after, 2, "asc", ALICE))
    newest = run(store.load_thread_items(thread.id, None, 3, "desc", ALICE))
    older = run(store.load_thread_items(thread.id, newest.after, 3, "desc", ALICE))

    assert (texts(first), first.has_more) == (["m0", "m1"], True)
    assert (texts(second), second.has_more) == (["m2", "m3"], True)
    assert (texts(third), third.has_more, third.after) == (["m4"], False, None)
    assert (texts(newest), newest.has_more) == (["m4", "m3", "m2"], True)
    assert (texts(older), older.has_more) == (["m1", "m0"], False)


def test_items_with_the_same_timestamp_keep_insertion_order(store):
    thread = new_thread(store, ALICE)
    moment = datetime(2026, 1, 1)
    for n in range(3):
        item = user_message(store, thread, f"m{n}").model_copy(update={"created_at": moment})
        run(store.add_thread_item(thread.id, item, ALICE))

    assert texts(run(store.load_thread_items(thread.id, None, 10, "asc", ALICE))) == ["m0", "m1", "m2"]


def test_a_page_is_never_larger_than_max_page(store):
    thread = new_thread(store, ALICE)
    for n in range(MAX_PAGE + 5):
        run(store.add_thread_item(thread.id, user_message(store, thread, f"m{n}"), ALICE))

    page = run(store.load_thread_items(thread.id, None, 10**9, "asc", ALICE))

    assert len(page.data) == MAX_PAGE
    assert page.has_more is True


def test_add_thread_item_twice_is_one_row_updated_in_place(store, database_url):
    thread = new_thread(store, ALICE)
    first = user_message(store, thread, "first")
    run(store.add_thread_item(thread.id, first, ALICE))
    answer = AssistantMessageItem(
        id="msg_" + "a" * 48,
        thread_id=thread.id,
        created_at=datetime.now(),
        content=[AssistantMessageContent(text="v1")],
    )
    run(store.add_thread_item(thread.id, answer, ALICE))
    run(store.add_thread_item(thread.id, user_message(store, thread, "last"), ALICE))

    run(
        store.add_thread_item(
            thread.id, answer.model_copy(update={"content": [AssistantMessageContent(text="v2")]}), ALICE
        )
    )
    run(store.save_item(thread.id, answer.model_copy(update={"content": [AssistantMessageContent(text="v3")]}), ALICE))

    page = run(store.load_thread_items(thread.id, None, 10, "asc", ALICE))
    assert texts(page) == ["first", "v3", "last"]
    with store.database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ITEMS)).scalar() == 3


def test_save_thread_is_an_upsert(store):
    thread = new_thread(store, ALICE)

    run(store.save_thread(thread.model_copy(update={"title": "Renamed"}), ALICE))

    assert run(store.load_thread(thread.id, ALICE)).title == "Renamed"
    assert [t.id for t in run(store.load_threads(10, None, "desc", ALICE)).data] == [thread.id]


def test_threads_page_newest_first_per_owner(store):
    mine = [new_thread(store, ALICE, f"t{n}") for n in range(3)]
    new_thread(store, BOB, "bob's")

    first = run(store.load_threads(2, None, "desc", ALICE))
    rest = run(store.load_threads(2, first.after, "desc", ALICE))

    assert [t.id for t in first.data] == [mine[2].id, mine[1].id]
    assert [t.id for t in rest.data] == [mine[0].id]
    assert [t.title for t in run(store.load_threads(10, None, "asc", BOB)).data] == ["bob's"]


def test_another_owners_thread_and_items_do_not_exist_for_a_user(store):
    thread = new_thread(store, ALICE)
    item = user_message(store, thread, "secret")
    run(store.add_thread_item(thread.id, item, ALICE))

    with pytest.raises(NotFoundError):
        run(store.load_thread(thread.id, BOB))
    with pytest.raises(NotFoundError):
        run(store.load_item(thread.id, item.id, BOB))
    with pytest.raises(NotFoundError):
        run(store.load_thread_items(thread.id, None, 10, "asc", BOB))
    with pytest.raises(NotFoundError):
        run(store.add_thread_item(thread.id, user_message(store, thread, "intruder", BOB), BOB))
    with pytest.raises(NotFoundError):
        run(store.save_item(thread.id, user_message(store, thread, "x").model_copy(update={"id": item.id}), BOB))
    run(store.delete_thread_item(thread.id, item.id, BOB))
    run(store.delete_thread(thread.id, BOB))

    assert texts(run(store.load_thread_items(thread.id, None, 10, "asc", ALICE))) == ["secret"]
    assert run(store.load_threads(10, None, "desc", BOB)).data == []


def test_deleting_a_thread_deletes_its_items(store):
    thread = new_thread(store, ALICE)
    kept = new_thread(store, ALICE)
    for target in (thread, kept):
        run(store.add_thread_item(target.id, user_message(store, target, "x"), ALICE))

    run(store.delete_thread(thread.id, ALICE))

    with pytest.raises(NotFoundError):
        run(store.load_thread(thread.id, ALICE))
    with store.database.engine.connect() as connection:
        remaining = connection.execute(select(ITEMS.c.thread_id)).scalars().all()
    assert remaining == [kept.id]


def test_delete_thread_item_removes_only_that_item(store):
    thread = new_thread(store, ALICE)
    items = [user_message(store, thread, f"m{n}") for n in range(3)]
    for item in items:
        run(store.add_thread_item(thread.id, item, ALICE))

    run(store.delete_thread_item(thread.id, items[1].id, ALICE))

    assert texts(run(store.load_thread_items(thread.id, None, 10, "asc", ALICE))) == ["m0", "m2"]


def test_thread_metadata_survives_the_round_trip(store):
    thread = ThreadMetadata(
        id=store.generate_thread_id(ALICE), created_at=datetime.now(), title="T", metadata={"team": "support"}
    )
    run(store.save_thread(thread, ALICE))

    assert run(store.load_thread(thread.id, ALICE)).metadata == {"team": "support"}


def test_generated_ids_are_unique_and_carry_128_bits(store):
    thread = new_thread(store, ALICE)
    ids = {store.generate_item_id("message", thread, ALICE) for _ in range(1000)}

    assert len(ids) == 1000
    assert all(len(i) == len("msg_") + 32 for i in ids)
