"""What the self-hosted server keeps of conversations: feedback, titles, per-turn figures, the admin summary and
dashboard, and retention. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from chatkit_backend.selfhosted.models import ATTACHMENT_BLOBS, ATTACHMENTS, FEEDBACK, ITEMS, THREADS, TURNS
from tests.admin_support import ADMIN_TOKEN
from tests.analytics_support import rows
from tests.selfhosted_support import chatkit_post, events_of, new_message, selfhosted_config, text_of
from tests.test_selfhosted_uploads import PNG, _upload

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def app(make_app, responses_standin, database_url):
    return make_app(selfhosted_config(responses_standin), DATABASE_URL=database_url, CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN)


def _create(client, text: str = "Hello there") -> list[dict]:
    answer = chatkit_post(client, "threads.create", {"input": new_message(text)})
    assert answer.status_code == 200
    return events_of(answer)


def _assistant_id(events: list[dict]) -> str:
    return next(
        e["item"]["id"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"
    )


def _wait_for(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return result


def test_feedback_is_stored_with_its_thread_items_and_user(app):
    owner, stranger = app.test_client(), app.test_client()
    events = _create(owner)
    thread_id, item_id = events[0]["thread"]["id"], _assistant_id(events)
    params = {"thread_id": thread_id, "item_ids": [item_id], "kind": "positive"}

    assert chatkit_post(owner, "items.feedback", params).get_json() == {}
    assert chatkit_post(owner, "items.feedback", {**params, "kind": "negative"}).get_json() == {}
    unknown = chatkit_post(owner, "items.feedback", {**params, "item_ids": [item_id, "msg_unknown"]})
    foreign = chatkit_post(stranger, "items.feedback", params)

    [row] = rows(app, FEEDBACK)
    owner_id = rows(app, THREADS)[0]["owner"]
    assert (row["thread_id"], row["item_id"], row["owner"], row["kind"]) == (thread_id, item_id, owner_id, "negative")
    assert (unknown.status_code, foreign.status_code) == (404, 404)


def test_a_thread_is_titled_from_its_first_message_after_the_first_answer(app):
    client = app.test_client()

    events = _create(client, "Could   you help me plan a three-day trip to Lisbon in early spring next year please")
    thread_id = events[0]["thread"]["id"]
    chatkit_post(client, "threads.add_user_message", {"thread_id": thread_id, "input": new_message("And Porto?")})

    kinds = [e["type"] for e in events]
    answer_done = max(i for i, e in enumerate(events) if e["type"] == "thread.item.done")
    assert kinds.index("thread.updated") > answer_done  # the answer went first
    expected = "Could you help me plan a three-day trip to Lisbon in early…"
    assert events[kinds.index("thread.updated")]["thread"]["title"] == expected
    assert chatkit_post(client, "threads.get_by_id", {"thread_id": thread_id}).get_json()["title"] == expected


def test_auto_title_off_leaves_threads_untitled(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_AUTO_TITLE="false")
    client = app.test_client()
    events = _create(client)
    assert "thread.updated" not in [e["type"] for e in events]
    thread = chatkit_post(client, "threads.get_by_id", {"thread_id": events[0]["thread"]["id"]})
    assert thread.status_code == 200
    assert "title" not in thread.get_json()


def test_a_title_model_names_the_thread_without_delaying_the_answer(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_TITLE_MODEL="gpt-title")
    client = app.test_client()
    release = threading.Event()

    def reply(body):
        if body["model"] == "gpt-title":
            release.wait(10)  # held until the answer is known to be complete
            return "Trip planning"
        return "Sure, let us plan."

    responses_standin.reply = reply
    events = _create(client, "Plan a trip")  # returns only once the whole answer has streamed
    thread_id = events[0]["thread"]["id"]
    title_request = responses_standin.wait_for_requests(2)[1]

    assert "Sure, let us plan." in [text_of(e["item"]) for e in events if e["type"] == "thread.item.done"]
    assert (title_request.body["model"], title_request.body["input"]) == ("gpt-title", "Plan a trip")
    assert "title" not in chatkit_post(client, "threads.get_by_id", {"thread_id": thread_id}).get_json()
    release.set()
    _wait_for(
        lambda: (
            chatkit_post(client, "threads.get_by_id", {"thread_id": thread_id}).get_json().get("title")
            == "Trip planning"
        )
    )


def test_each_turn_records_tokens_first_token_duration_and_errors(app, responses_standin):
    client = app.test_client()
    responses_standin.script_text("One two three.", deltas=3)
    events = _create(client, "count to three")
    responses_standin.inject("status", status=429)
    chatkit_post(
        client, "threads.add_user_message", {"thread_id": events[0]["thread"]["id"], "input": new_message("again")}
    )

    ok, failed = rows(app, TURNS)
    request = responses_standin.requests()[0].body
    words = len(request["instructions"].split()) + 3  # "count to three"
    assert (ok["thread_id"], ok["owner"], ok["model"]) == (
        events[0]["thread"]["id"],
        rows(app, THREADS)[0]["owner"],
        "gpt-4.1-mini",
    )
    assert (ok["input_tokens"], ok["output_tokens"], ok["error"]) == (words, 3, None)
    assert 0 <= ok["first_token_ms"] <= ok["duration_ms"]
    assert (failed["error"], failed["output_tokens"], failed["first_token_ms"]) == ("rate_limited", 0, None)


def test_the_summary_reports_conversation_figures_of_known_turns_and_failures(app, responses_standin):
    client = app.test_client()
    first = _create(client, "one")
    second = _create(client, "two")
    responses_standin.inject("status", status=500)
    _create(client, "three")
    responses_standin.inject("error_event", after_deltas=1)
    chatkit_post(
        client, "threads.add_user_message", {"thread_id": first[0]["thread"]["id"], "input": new_message("four")}
    )
    for events, kind in ((first, "positive"), (second, "positive")):
        params = {"thread_id": events[0]["thread"]["id"], "item_ids": [_assistant_id(events)], "kind": kind}
        chatkit_post(client, "items.feedback", params)
    params = {"thread_id": second[0]["thread"]["id"], "item_ids": [second[1]["item"]["id"]], "kind": "negative"}
    chatkit_post(client, "items.feedback", params)
    turns = rows(app, TURNS)
    with app.extensions["chatkit_db"].engine.begin() as connection:
        for turn, value in zip(turns, (300, 100, None, 200), strict=True):
            connection.execute(update(TURNS).where(TURNS.c.seq == turn["seq"]).values(first_token_ms=value))
    # A turn outside the range is not counted.
    with app.extensions["chatkit_db"].engine.begin() as connection:
        old = {
            **{k: v for k, v in turns[0].items() if k != "seq"},
            "started_at": datetime.now(UTC) - timedelta(days=30),
        }
        connection.execute(TURNS.insert().values(**old))

    body = app.test_client().get("/api/admin/analytics/summary", headers=BEARER).get_json()

    figures = body["conversations"]
    assert {k: figures[k] for k in ("threads", "turns", "model_errors")} == {
        "threads": 3,
        "turns": 4,
        "model_errors": 2,
    }
    assert figures["input_tokens"] == sum(t["input_tokens"] for t in turns)
    assert figures["output_tokens"] == sum(t["output_tokens"] for t in turns) > 0
    assert figures["feedback"] == {"positive": 2, "negative": 1}
    assert figures["first_token_ms"] == {"p50": 200, "p95": 300}
    assert sum(figures["series"]["turns"]) == 4
    assert sum(figures["series"]["model_errors"]) == 2


def test_the_dashboard_charts_conversation_figures(app):
    client = app.test_client()
    _create(client)
    _create(client)
    client.post("/admin/login", data={"token": ADMIN_TOKEN})

    page = client.get("/admin").get_data(as_text=True)

    assert 'id="chart-turns" data-total="2"' in page
    assert 'id="chart-model_errors" data-total="0"' in page
    assert 'id="chart-tokens"' in page
    assert '<strong id="conversation-turns">2</strong>' in page


def test_prune_deletes_old_conversations_with_their_items_attachments_and_turns(app):
    client = app.test_client()
    old = _create(client, "old thread")
    attachment = _upload(client, PNG).get_json()
    chatkit_post(
        client,
        "threads.add_user_message",
        {"thread_id": old[0]["thread"]["id"], "input": {**new_message("look"), "attachments": [attachment["id"]]}},
    )
    loose = _upload(client, PNG).get_json()
    kept_quiet = _create(client, "old thread, new message")
    fresh = _create(client, "fresh")
    chatkit_post(
        client,
        "items.feedback",
        {"thread_id": old[0]["thread"]["id"], "item_ids": [_assistant_id(old)], "kind": "positive"},
    )
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with app.extensions["chatkit_db"].engine.begin() as connection:
        quiet = [old[0]["thread"]["id"], kept_quiet[0]["thread"]["id"]]
        connection.execute(update(THREADS).where(THREADS.c.id.in_(quiet)).values(updated_at=long_ago))
        connection.execute(update(ITEMS).where(ITEMS.c.thread_id == old[0]["thread"]["id"]).values(created_at=long_ago))
        connection.execute(update(ATTACHMENTS).values(created_at=long_ago))
        connection.execute(update(TURNS).where(TURNS.c.thread_id == old[0]["thread"]["id"]).values(started_at=long_ago))

    result = app.test_cli_runner().invoke(args=["analytics", "prune"])

    assert result.exit_code == 0, result.output
    assert "1 conversations, 4 items, 2 attachments, 0 feedback, 2 turns" in result.output
    with app.extensions["chatkit_db"].engine.connect() as connection:
        remaining = set(connection.execute(select(THREADS.c.id)).scalars())
        attachments = set(connection.execute(select(ATTACHMENTS.c.id)).scalars())
    assert remaining == {kept_quiet[0]["thread"]["id"], fresh[0]["thread"]["id"]}
    assert attachments == set()
    assert rows(app, ATTACHMENT_BLOBS) == []
    assert rows(app, FEEDBACK) == []
    assert {t["thread_id"] for t in rows(app, TURNS)} == remaining
    assert loose["id"] != attachment["id"]
