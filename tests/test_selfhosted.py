"""POST /api/chatkit: every ChatKit request type, history, identity scoping, errors and limits.

The model is `tests/responses_standin.py` on loopback; the app runs its Agents SDK agent against it
through the Flask test client (the bridge's event loop runs in a thread here, as under `flask run`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.selfhosted_support import chatkit_post, events_of, new_message, selfhosted_config, text_of

pytestmark = pytest.mark.usefixtures("responses_standin")


def _create(client, text: str = "Hello") -> tuple[str, list[dict[str, Any]]]:
    answer = chatkit_post(client, "threads.create", {"input": new_message(text)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    events = events_of(answer)
    return events[0]["thread"]["id"], events


def test_threads_create_streams_the_thread_the_user_message_and_the_answer(selfhosted_client, responses_standin):
    responses_standin.script_text("Hi there, friend.", deltas=3)
    answer = chatkit_post(selfhosted_client, "threads.create", {"input": new_message("Hello")})

    assert answer.status_code == 200
    assert answer.mimetype == "text/event-stream"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["X-Accel-Buffering"] == "no"
    events = events_of(answer)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "thread.created"
    assert events[1]["type"] == "thread.item.done"
    assert events[1]["item"]["type"] == "user_message"
    deltas = [e["update"]["delta"] for e in events if e["type"] == "thread.item.updated" and "delta" in e["update"]]
    assert len(deltas) == 3
    assert "".join(deltas) == "Hi there, friend."
    done = [e["item"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"]
    assert text_of(done[0]) == "Hi there, friend."


def test_thread_ids_carry_128_random_bits(selfhosted_client):
    thread_id, events = _create(selfhosted_client)
    prefix, _, random_part = thread_id.partition("_")
    assert prefix == "thr"
    assert len(random_part) == 32
    assert int(random_part, 16) >= 0
    assert len(events[1]["item"]["id"].partition("_")[2]) == 32


def test_add_user_message_sends_the_history_to_the_model_in_order(selfhosted_client, responses_standin):
    responses_standin.script_text("First answer.")
    thread_id, _ = _create(selfhosted_client, "First question")
    responses_standin.script_text("Second answer.")

    answer = chatkit_post(
        selfhosted_client, "threads.add_user_message", {"thread_id": thread_id, "input": new_message("Second question")}
    )

    assert answer.status_code == 200
    assert "Second answer." in [text_of(e["item"]) for e in events_of(answer) if e["type"] == "thread.item.done"]
    model_input = responses_standin.requests()[-1].body["input"]
    texts = [part["text"] for message in model_input for part in message["content"]]
    assert texts == ["First question", "First answer.", "Second question"]


def test_get_by_id_list_update_and_delete(selfhosted_client):
    thread_id, _ = _create(selfhosted_client)

    thread = chatkit_post(selfhosted_client, "threads.get_by_id", {"thread_id": thread_id}).get_json()
    assert thread["id"] == thread_id
    assert [item["type"] for item in thread["items"]["data"]] == ["user_message", "assistant_message"]

    renamed = chatkit_post(selfhosted_client, "threads.update", {"thread_id": thread_id, "title": "Renamed"})
    assert renamed.get_json()["title"] == "Renamed"
    listed = chatkit_post(selfhosted_client, "threads.list", {}).get_json()
    assert [(t["id"], t.get("title")) for t in listed["data"]] == [(thread_id, "Renamed")]

    assert chatkit_post(selfhosted_client, "threads.delete", {"thread_id": thread_id}).get_json() == {}
    gone = chatkit_post(selfhosted_client, "threads.get_by_id", {"thread_id": thread_id})
    assert gone.status_code == 404
    assert gone.get_json()["error"]["code"] == "not_found"


def test_threads_list_pages_newest_first(selfhosted_client):
    ids = [_create(selfhosted_client, f"message {n}")[0] for n in range(3)]

    first = chatkit_post(selfhosted_client, "threads.list", {"limit": 2}).get_json()
    second = chatkit_post(selfhosted_client, "threads.list", {"limit": 2, "after": first["after"]}).get_json()

    assert [t["id"] for t in first["data"]] == [ids[2], ids[1]]
    assert first["has_more"] is True
    assert [t["id"] for t in second["data"]] == [ids[0]]
    assert second["has_more"] is False


def test_items_list_pages_both_ways(selfhosted_client):
    thread_id, _ = _create(selfhosted_client, "one")
    chatkit_post(selfhosted_client, "threads.add_user_message", {"thread_id": thread_id, "input": new_message("two")})

    asc = chatkit_post(selfhosted_client, "items.list", {"thread_id": thread_id, "order": "asc", "limit": 3}).get_json()
    desc = chatkit_post(selfhosted_client, "items.list", {"thread_id": thread_id, "order": "desc"}).get_json()

    assert [text_of(i) for i in asc["data"]][:1] == ["one"]
    assert asc["has_more"] is True
    rest = chatkit_post(
        selfhosted_client, "items.list", {"thread_id": thread_id, "order": "asc", "after": asc["after"]}
    ).get_json()
    assert [i["id"] for i in asc["data"] + rest["data"]] == [i["id"] for i in reversed(desc["data"])]
    assert len(desc["data"]) == 4


def test_retry_after_item_replaces_the_answer(selfhosted_client, responses_standin):
    responses_standin.script_text("Bad answer.")
    thread_id, events = _create(selfhosted_client, "Question")
    user_item = events[1]["item"]["id"]
    responses_standin.script_text("Better answer.")

    answer = chatkit_post(selfhosted_client, "threads.retry_after_item", {"thread_id": thread_id, "item_id": user_item})

    assert answer.status_code == 200
    items = chatkit_post(selfhosted_client, "items.list", {"thread_id": thread_id, "order": "asc"}).get_json()["data"]
    assert [text_of(i) for i in items] == ["Question", "Better answer."]


def test_retry_after_an_unknown_item_is_404_and_calls_no_model(selfhosted_client, responses_standin):
    thread_id, _ = _create(selfhosted_client)
    calls = len(responses_standin.requests())

    answer = chatkit_post(selfhosted_client, "threads.retry_after_item", {"thread_id": thread_id, "item_id": "msg_x"})

    assert answer.status_code == 404
    assert len(responses_standin.requests()) == calls


def test_client_tool_output_without_a_pending_call_is_a_validation_error(selfhosted_client):
    thread_id, _ = _create(selfhosted_client)

    answer = chatkit_post(selfhosted_client, "threads.add_client_tool_output", {"thread_id": thread_id, "result": {}})

    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "validation_error"


def test_feedback_on_own_items_is_accepted_and_on_another_users_thread_is_404(selfhosted_app):
    owner, stranger = selfhosted_app.test_client(), selfhosted_app.test_client()
    thread_id, events = _create(owner)
    params = {"thread_id": thread_id, "item_ids": [events[1]["item"]["id"]], "kind": "positive"}

    assert chatkit_post(owner, "items.feedback", params).get_json() == {}
    assert chatkit_post(stranger, "items.feedback", params).status_code == 404


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("threads.sync_custom_action", {"thread_id": "THREAD", "action": {"type": "x", "payload": {}}}),
        ("input.transcribe", {"audio_base64": "AAAA", "mime_type": "audio/webm"}),
        ("attachments.create", {"name": "a.png", "size": 10, "mime_type": "image/png"}),
    ],
)
def test_operations_this_server_does_not_support_are_501(selfhosted_client, kind, params):
    thread_id, _ = _create(selfhosted_client)
    params = json.loads(json.dumps(params).replace("THREAD", thread_id))

    answer = chatkit_post(selfhosted_client, kind, params)

    assert answer.status_code == 501
    assert answer.get_json()["error"]["code"] == "not_implemented"


def test_another_users_thread_is_404_for_every_operation_and_calls_no_model(selfhosted_app, responses_standin):
    owner, stranger = selfhosted_app.test_client(), selfhosted_app.test_client()
    thread_id, events = _create(owner)
    calls = len(responses_standin.requests())
    attempts = [
        ("threads.get_by_id", {"thread_id": thread_id}),
        ("items.list", {"thread_id": thread_id}),
        ("threads.update", {"thread_id": thread_id, "title": "mine"}),
        ("threads.add_user_message", {"thread_id": thread_id, "input": new_message("hijack")}),
        ("threads.retry_after_item", {"thread_id": thread_id, "item_id": events[1]["item"]["id"]}),
        ("threads.add_client_tool_output", {"thread_id": thread_id, "result": {}}),
    ]

    for kind, params in attempts:
        answer = chatkit_post(stranger, kind, params)
        assert answer.status_code == 404, kind
        assert answer.get_json()["error"]["code"] == "not_found"
    chatkit_post(stranger, "threads.delete", {"thread_id": thread_id})

    assert len(responses_standin.requests()) == calls
    assert chatkit_post(stranger, "threads.list", {}).get_json()["data"] == []
    assert chatkit_post(owner, "threads.get_by_id", {"thread_id": thread_id}).get_json()["title"] == "Hello"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "validation_error"),
        (b'{"type": "threads.explode", "params": {}}', "application/json", 400, "validation_error"),
        (b'{"type": {"threads.list": 1}, "params": {}}', "application/json", 400, "validation_error"),
        (b'{"type": ["threads.list"], "params": {}}', "application/json", 400, "validation_error"),
        (b'{"type": "threads.list", "params": []}', "application/json", 400, "validation_error"),
        (b'{"type": "threads.get_by_id", "params": {}}', "application/json", 400, "validation_error"),
        (b'{"type": "threads.get_by_id", "params": {"thread_id": 7}}', "application/json", 400, "validation_error"),
        (b'{"type": "threads.list", "params": {"limit": "ten"}}', "application/json", 400, "validation_error"),
        (
            b'{"type": "threads.get_by_id", "params": {"thread_id": "a\\u0000"}}',
            "application/json",
            400,
            "invalid_json",
        ),
        (b'{"type": "threads.list", "params": {}}', "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_a_body_that_is_not_a_chatkit_request_is_refused_in_the_contract(
    selfhosted_client, body, content_type, status, code
):
    answer = selfhosted_client.post("/api/chatkit", data=body, content_type=content_type)

    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert error["code"] == code
    assert error["request_id"]


def test_validation_errors_name_the_field(selfhosted_client):
    answer = chatkit_post(selfhosted_client, "threads.get_by_id", {"thread_id": 7})

    fields = [detail["field"] for detail in answer.get_json()["error"]["details"]]
    assert any(field.endswith("params.thread_id") for field in fields)


def test_a_body_over_max_content_length_is_413(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), MAX_CONTENT_LENGTH="2048")
    text = "x" * 4096

    answer = chatkit_post(app.test_client(), "threads.create", {"input": new_message(text)})

    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "payload_too_large"


def test_an_oversized_body_leaves_the_rate_limit_storage_in_use(make_app, responses_standin, caplog):
    # Raised inside a limit's exempt_when, the 413 used to switch the process's limiter to its fallback storage.
    app = make_app(selfhosted_config(responses_standin), MAX_CONTENT_LENGTH="2048")
    client = app.test_client()

    assert chatkit_post(client, "threads.create", {"input": new_message("x" * 4096)}).status_code == 413

    assert [r.getMessage() for r in caplog.records if r.name == "flask-limiter"] == []


def test_a_get_is_405_with_allow(selfhosted_client):
    answer = selfhosted_client.get("/api/chatkit")

    assert answer.status_code == 405
    assert "POST" in answer.headers["Allow"].split(", ")
    assert answer.get_json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("fault", "options", "shown"),
    [
        ("status", {"status": 429, "retry_after": "1"}, "The assistant is busy right now."),
        ("status", {"status": 500}, "The assistant could not answer."),
        ("cut", {}, "The assistant could not answer."),
        ("failed", {}, "The assistant could not answer."),
        ("error_event", {}, "The assistant could not answer."),
    ],
)
def test_a_model_failure_is_an_error_event_and_the_users_message_is_kept(
    selfhosted_client, responses_standin, caplog, fault, options, shown
):
    responses_standin.inject(fault, **options)

    answer = chatkit_post(selfhosted_client, "threads.create", {"input": new_message("Keep me")})

    assert answer.status_code == 200
    events = events_of(answer)
    assert events[-1]["type"] == "error"
    assert events[-1]["allow_retry"] is True
    assert events[-1]["message"].startswith(shown)
    thread_id = events[0]["thread"]["id"]
    items = chatkit_post(selfhosted_client, "items.list", {"thread_id": thread_id, "order": "asc"}).get_json()["data"]
    assert [text_of(i) for i in items][:1] == ["Keep me"]
    failures = [r for r in caplog.records if r.getMessage().startswith("model call failed")]
    assert failures
    assert failures[0].request_id == answer.headers["X-Request-ID"]
    assert responses_standin.api_key not in caplog.text
    assert responses_standin.api_key not in answer.get_data(as_text=True)


def test_no_request_leaves_for_openais_tracing(selfhosted_client, responses_standin):
    _create(selfhosted_client)

    assert {r.path for r in responses_standin.requests()} == {"/v1/responses"}


def test_without_a_key_ready_names_it_and_the_endpoint_is_503(make_app):
    app = make_app(CHATKIT_MODE="self_hosted")
    client = app.test_client()

    ready = client.get("/ready")
    answer = chatkit_post(client, "threads.list", {})

    assert ready.status_code == 503
    assert "OPENAI_API_KEY" in ready.get_json()["checks"]["chatkit_credentials"]["message"]
    assert "CHATKIT_WORKFLOW_ID" not in ready.get_json()["checks"]["chatkit_credentials"]["message"]
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "not_configured"


def test_hosted_mode_does_not_serve_the_protocol(make_app):
    app = make_app(CHATKIT_MODE="hosted", OPENAI_API_KEY="sk-x", CHATKIT_WORKFLOW_ID="wf_x")

    answer = chatkit_post(app.test_client(), "threads.list", {})

    assert answer.status_code == 503
    assert "CHATKIT_MODE=self_hosted" in answer.get_json()["error"]["message"]


# Limits per day in these tests: a sliding window spreads hits across a window's edge, so a per-minute
# limit would let one more request through whenever a test straddles the turn of a minute.


def test_message_limit_counts_model_requests_only(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_MESSAGE_RATE_LIMIT="2/day")
    client = app.test_client()
    thread_id, _ = _create(client)
    for _ in range(5):  # reading is not counted
        assert chatkit_post(client, "threads.list", {}).status_code == 200
    assert (
        chatkit_post(
            client, "threads.add_user_message", {"thread_id": thread_id, "input": new_message("2")}
        ).status_code
        == 200
    )

    refused = chatkit_post(client, "threads.add_user_message", {"thread_id": thread_id, "input": new_message("3")})

    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400


def test_read_limit_is_separate(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_READ_RATE_LIMIT="2/day")
    client = app.test_client()

    statuses = [chatkit_post(client, "threads.list", {}).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert chatkit_post(client, "threads.create", {"input": new_message("still fine")}).status_code == 200


def test_the_per_address_message_limit_holds_for_visitors_without_a_cookie(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_MESSAGE_RATE_LIMIT_PER_ADDRESS="2/day")

    statuses = [
        chatkit_post(app.test_client(), "threads.create", {"input": new_message("hi")}).status_code for _ in range(3)
    ]

    assert statuses == [200, 200, 429]
