"""CHATKIT_AGENT: a team's own agent with function tools, client tools and widgets, and how a bad setting stops start.

The agent is `examples/support_agent.py`; the model is `tests/responses_standin.py`, scripted per test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatkit_backend.config import ConfigError
from tests.selfhosted_support import chatkit_post, events_of, new_message, selfhosted_config, text_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def agent_client(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_AGENT="examples.support_agent:agent")
    return app.test_client()


def _outputs(request) -> list[dict]:
    return [item for item in request.body["input"] if item.get("type") == "function_call_output"]


def test_a_function_tool_runs_and_its_output_reaches_the_models_second_request(agent_client, responses_standin):
    responses_standin.script_tool_call("lookup_order", json.dumps({"order_id": "A1"}))
    responses_standin.script_text("Your order A1 shipped on 2 December.")

    answer = chatkit_post(agent_client, "threads.create", {"input": new_message("Where is order A1?")})

    events = events_of(answer)
    first, second = responses_standin.requests()
    assert [tool["name"] for tool in first.body["tools"]] == ["lookup_order", "get_selection", "offer_choices"]
    assert first.body["instructions"].startswith("You help customers")
    assert [output["output"] for output in _outputs(second)] == ["Order A1: shipped on 2 December"]
    assert {"type": "progress_update", "icon": "bolt", "text": "Running lookup_order…"} in events
    done = [e["item"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"]
    assert text_of(done[-1]) == "Your order A1 shipped on 2 December."


def test_a_factory_taking_the_settings_is_called_with_them(make_app, responses_standin):
    app = make_app(
        selfhosted_config(responses_standin), CHATKIT_AGENT="examples.support_agent:build", CHATKIT_MODEL="gpt-team"
    )
    chatkit_post(app.test_client(), "threads.create", {"input": new_message("Hi")})
    [request] = responses_standin.requests()
    assert request.body["model"] == "gpt-team"
    assert len(request.body["tools"]) == 3


def test_a_client_tool_round_trip_reaches_the_model(agent_client, responses_standin):
    responses_standin.script_tool_call("get_selection", "{}")
    answer = chatkit_post(agent_client, "threads.create", {"input": new_message("Explain what I selected")})
    events = events_of(answer)
    thread_id = events[0]["thread"]["id"]
    [call] = [e["item"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "client_tool_call"]
    assert (call["name"], call["arguments"], call["status"]) == ("get_selection", {"max_length": 500}, "pending")
    assert len(responses_standin.requests()) == 1  # the run stopped at the client tool

    responses_standin.script_text("You selected a haiku.")
    result = {"text": "an old silent pond"}
    answer = chatkit_post(agent_client, "threads.add_client_tool_output", {"thread_id": thread_id, "result": result})

    assert answer.status_code == 200
    follow_up = responses_standin.requests()[-1]
    calls = [item for item in follow_up.body["input"] if item.get("type") == "function_call"]
    assert [(c["name"], c["call_id"]) for c in calls] == [("get_selection", call["call_id"])]
    assert [json.loads(o["output"]) for o in _outputs(follow_up)] == [result]
    assert "You selected a haiku." in [text_of(e["item"]) for e in events_of(answer) if e["type"] == "thread.item.done"]


def test_a_widget_action_reaches_the_agent_as_its_next_turn(agent_client, responses_standin):
    responses_standin.script_tool_call("offer_choices", json.dumps({"question": "Refund it?"}))
    responses_standin.script_text("Shall I?")
    events = events_of(chatkit_post(agent_client, "threads.create", {"input": new_message("Refund order B2")}))
    thread_id = events[0]["thread"]["id"]
    [widget] = [e["item"] for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "widget"]
    button = widget["widget"]["children"][1]
    assert button["onClickAction"]["payload"] == {"answer": "yes"}

    responses_standin.script_text("Refund started.")
    answer = chatkit_post(
        agent_client,
        "threads.custom_action",
        {"thread_id": thread_id, "item_id": widget["id"], "action": button["onClickAction"]},
    )

    streamed = events_of(answer)
    assert "Refund started." in [text_of(e["item"]) for e in streamed if e["type"] == "thread.item.done"]
    assert not [e for e in streamed if e["type"] == "thread.item.done" and e["item"]["type"] == "hidden_context_item"]
    texts = [
        part.get("text", "")
        for item in responses_standin.requests()[-1].body["input"]
        for part in item.get("content") or []
        if isinstance(part, dict)
    ]
    assert any("'choose'" in text and '"answer": "yes"' in text for text in texts)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("examples.no_such_module:agent", "importing examples.no_such_module failed: ModuleNotFoundError"),
        ("examples.support_agent:missing", "examples.support_agent has no missing"),
        ("examples.support_agent:ORDERS", "ORDERS is a dict, not an Agents SDK Agent"),
        ("examples.support_agent:lookup_order", "lookup_order is a FunctionTool, not an Agents SDK Agent"),
    ],
)
def test_a_setting_that_is_not_an_agent_stops_the_start_naming_chatkit_agent(make_app, responses_standin, spec, reason):
    with pytest.raises(ConfigError) as caught:
        make_app(selfhosted_config(responses_standin), CHATKIT_AGENT=spec)
    assert f"CHATKIT_AGENT={spec!r}: {reason}" in str(caught.value)


def test_a_malformed_setting_is_a_configuration_error(make_app):
    with pytest.raises(ConfigError, match=r"CHATKIT_AGENT='support_agent' is not package\.module:name"):
        make_app(CHATKIT_AGENT="support_agent")


def test_flask_check_stops_on_a_bad_agent_naming_the_setting(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CHATKIT_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}",
        "OPENAI_API_KEY": "sk-test",
        "CHATKIT_AGENT": "examples.support_agent:ORDERS",
    }
    flask = Path(sys.executable).parent / "flask"
    result = subprocess.run(
        [str(flask), "--app", "chatkit_backend", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CHATKIT_AGENT='examples.support_agent:ORDERS': ORDERS is a dict" in result.stderr + result.stdout
    assert "sk-test" not in result.stderr + result.stdout
