"""The Responses API stand-in speaks the wire format the openai client and the Agents SDK expect (§3 of
chatkit-selfhosted.md), plays its faults, and records which streams the client abandoned."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import openai
import pytest
import requests
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_provider import OpenAIProvider

from tests.conftest import free_port
from tests.responses_standin import DEFAULT_KEY, DEFAULT_TEXT, ResponsesStandin

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 5,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def _client(standin: ResponsesStandin) -> openai.OpenAI:
    return openai.OpenAI(base_url=standin.base_url, api_key=standin.api_key, max_retries=0, timeout=10)


def _events(standin: ResponsesStandin, **body: object) -> list:
    with _client(standin) as client:
        return list(client.responses.create(model="m", input=body.pop("input", "hi"), stream=True, **body))


def _text(events: list) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def _agents_run_config(standin: ResponsesStandin) -> tuple[openai.AsyncOpenAI, RunConfig]:
    """An async client on the stand-in and a run config using it, tracing off (there is no internet)."""
    client = openai.AsyncOpenAI(base_url=standin.base_url, api_key=standin.api_key, max_retries=0)
    return client, RunConfig(model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)


def _open_raw_stream(standin: ResponsesStandin, until: bytes = b"response.created") -> socket.socket:
    """A streaming request on a raw socket, read to the end of the frame named `until`."""
    body = json.dumps({"model": "m", "input": "hi", "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", standin.port), timeout=5)
    head = (
        f"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {standin.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        sock.sendall(head.encode() + body)
        _read_until(sock, until)
    except BaseException:
        sock.close()
        raise
    return sock


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    """Read until `marker` and the end of its chunk: nothing unread, so a close sends FIN, not RST."""
    received = b""
    while marker not in received or not received.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}")
        received += chunk
    return received


def test_stream_sends_the_documented_event_sequence_and_the_deltas_make_the_scripted_text(responses_standin):
    responses_standin.script_text("The scripted answer, in pieces.", deltas=5)
    events = _events(responses_standin)
    assert [e.type for e in events] == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(TEXT_EVENTS)))
    assert _text(events) == "The scripted answer, in pieces."
    completed = events[-1].response
    assert completed.status == "completed"
    assert completed.output_text == "The scripted answer, in pieces."
    assert completed.output[0].id == events[2].item.id


def test_script_is_first_in_first_out_then_the_default_text(responses_standin):
    responses_standin.script_text("first")
    responses_standin.script_text("second")
    texts = [_text(_events(responses_standin)) for _ in range(3)]
    assert texts == ["first", "second", DEFAULT_TEXT]


def test_every_answer_mints_new_ids_shaped_like_the_real_ones(responses_standin):
    first, second = _events(responses_standin), _events(responses_standin)
    response_ids = {first[0].response.id, second[0].response.id}
    message_ids = {first[2].item.id, second[2].item.id}
    assert len(response_ids) == 2
    assert len(message_ids) == 2
    assert all(i.startswith("resp_") and len(i) == 55 for i in response_ids)
    assert all(i.startswith("msg_") and len(i) == 54 for i in message_ids)


def test_default_reply_is_split_into_the_configured_deltas_and_usage_counts_words_and_deltas():
    with ResponsesStandin(deltas=3) as standin:
        events = _events(standin, input="three words here", instructions="be brief")
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 3
    assert "".join(deltas) == DEFAULT_TEXT
    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 3, 8)


def test_non_streaming_request_gets_the_same_content_as_one_response_object(responses_standin):
    responses_standin.script_text("All at once.")
    with _client(responses_standin) as client:
        response = client.responses.create(model="m", input="hi")
    assert response.status == "completed"
    assert response.output_text == "All at once."
    assert response.id.startswith("resp_")
    assert response.usage.output_tokens > 0
    assert responses_standin.streams() == []


def test_requests_are_recorded_with_headers_and_parsed_body(responses_standin):
    before = time.monotonic()
    _events(responses_standin, input="recorded input")
    [recorded] = responses_standin.wait_for_requests(1)
    assert (recorded.method, recorded.path) == ("POST", "/v1/responses")
    assert recorded.body["input"] == "recorded input"
    assert recorded.body["stream"] is True
    assert recorded.header("authorization") == f"Bearer {responses_standin.api_key}"
    assert before <= recorded.at <= time.monotonic()


def test_wrong_key_is_401_with_the_api_error_body(responses_standin):
    response = requests.post(
        f"{responses_standin.base_url}/responses",
        json={"model": "m", "input": "hi", "stream": True},
        headers={"Authorization": "Bearer sk-wrong"},
        timeout=5,
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "code", "param"}
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong" not in response.text


def test_status_429_raises_rate_limit_error_with_retry_after(responses_standin):
    responses_standin.inject("status", status=429, retry_after="7")
    with _client(responses_standin) as client, pytest.raises(openai.RateLimitError) as raised:
        client.responses.create(model="m", input="hi", stream=True)
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.body["type"] == "requests"
    assert _text(_events(responses_standin)) == DEFAULT_TEXT  # one time only


def test_status_500_raises_internal_server_error_also_without_streaming(responses_standin):
    responses_standin.inject("status", status=500)
    with _client(responses_standin) as client, pytest.raises(openai.InternalServerError):
        client.responses.create(model="m", input="hi")


def test_failed_fault_streams_response_failed_after_some_deltas(responses_standin):
    responses_standin.inject("failed", code="server_error", message="boom", after_deltas=2)
    events = _events(responses_standin)
    assert [e.type for e in events][-3:] == ["response.output_text.delta"] * 2 + ["response.failed"]
    failed = events[-1].response
    assert failed.status == "failed"
    assert (failed.error.code, failed.error.message) == ("server_error", "boom")


def test_error_event_fault_streams_an_error_frame(responses_standin):
    responses_standin.inject("error_event", code="rate_limit_exceeded", message="slow down", after_deltas=0)
    events = _events(responses_standin)
    assert "response.output_text.delta" not in [e.type for e in events]
    assert events[-1].type == "error"
    assert (events[-1].code, events[-1].message) == ("rate_limit_exceeded", "slow down")


def test_cut_fault_ends_the_stream_without_completed(responses_standin):
    responses_standin.inject("cut", after_deltas=2)
    seen: list[str] = []
    with _client(responses_standin) as client:
        stream = client.responses.create(model="m", input="hi", stream=True)
        with pytest.raises(openai.APIConnectionError):
            seen.extend(event.type for event in stream)
    assert seen.count("response.output_text.delta") == 2
    assert "response.completed" not in seen
    assert responses_standin.streams()[0].fault == "cut"


def test_tool_call_script_streams_a_function_call_item(responses_standin):
    responses_standin.script_tool_call("get_weather", '{"city": "Paris"}')
    events = _events(responses_standin)
    added = events[2].item
    assert (added.type, added.name, added.arguments, added.status) == (
        "function_call",
        "get_weather",
        "",
        "in_progress",
    )
    assert added.id.startswith("fc_")
    assert added.call_id.startswith("call_")
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert arguments == '{"city": "Paris"}'
    assert events[-3].type == "response.function_call_arguments.done"
    [output] = events[-1].response.output
    assert (output.type, output.arguments, output.call_id) == ("function_call", '{"city": "Paris"}', added.call_id)


def test_client_closing_mid_stream_is_recorded_as_abandoned_within_a_fraction_of_a_second(responses_standin):
    responses_standin.set_delays(delta_delay_ms=2000)
    sock = _open_raw_stream(responses_standin, until=b"response.content_part.added")  # then a 2 s pause
    assert responses_standin.streams()[0].state == "open"
    closed_at = time.monotonic()
    sock.close()
    record = responses_standin.wait_for_stream_state(0, "abandoned", timeout=2)
    assert record.ended_at - closed_at < 0.5


def test_hang_fault_notices_the_client_leaving_and_open_streams_counts_it(responses_standin):
    responses_standin.inject("hang", seconds=30)
    sock = _open_raw_stream(responses_standin)
    assert responses_standin.open_streams == 1
    closed_at = time.monotonic()
    sock.close()
    record = responses_standin.wait_for_stream_state(0, "abandoned", timeout=2)
    assert record.ended_at - closed_at < 0.5
    assert record.frames == 1  # response.created, then nothing
    assert responses_standin.open_streams == 0


def test_slow_fault_and_first_delay_space_the_frames(responses_standin):
    responses_standin.set_delays(first_delay_ms=150)
    responses_standin.inject("slow", seconds=0.05)
    started = time.monotonic()
    with _client(responses_standin) as client:
        stream = client.responses.create(model="m", input="hi", stream=True)
        first_at = time.monotonic()
        events = list(stream)
    done_at = time.monotonic()
    assert first_at - started >= 0.15
    assert done_at - first_at >= 5 * 0.05
    assert events[-1].type == "response.completed"


def test_holds_a_hundred_concurrent_streams_and_notices_each_client_leaving(responses_standin):
    responses_standin.inject("hang", times=100, seconds=30)  # each stays open until its client leaves
    sockets: list[socket.socket] = []
    try:
        for _ in range(100):
            sockets.append(_open_raw_stream(responses_standin))
        assert responses_standin.open_streams == 100
    finally:
        for sock in sockets:
            sock.close()
    for index in range(100):
        responses_standin.wait_for_stream_state(index, "abandoned", timeout=5)
    assert responses_standin.open_streams == 0


def test_agents_runner_returns_the_scripted_text(responses_standin, monkeypatch):
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    responses_standin.script_text("Agents hear the stand-in.")

    async def run() -> str:
        client, config = _agents_run_config(responses_standin)
        result = await Runner.run(Agent(name="a", instructions="Be brief.", model="m"), "hi", run_config=config)
        await client.close()
        return result.final_output

    assert asyncio.run(run()) == "Agents hear the stand-in."


def test_agents_streamed_tool_call_sends_the_tool_output_in_the_second_request(responses_standin, monkeypatch):
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    responses_standin.script_tool_call("get_weather", '{"city": "Paris"}')
    responses_standin.script_text("It is sunny in Paris.")

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    async def run() -> str:
        client, config = _agents_run_config(responses_standin)
        agent = Agent(name="a", instructions="Use tools.", model="m", tools=[get_weather])
        result = Runner.run_streamed(agent, "weather in Paris?", run_config=config)
        async for _ in result.stream_events():
            pass
        await client.close()
        return result.final_output

    assert asyncio.run(run()) == "It is sunny in Paris."
    first, second = responses_standin.wait_for_requests(2)
    assert first.body["tools"][0]["name"] == "get_weather"
    call = next(i for i in second.body["input"] if i.get("type") == "function_call")
    output = next(i for i in second.body["input"] if i.get("type") == "function_call_output")
    assert output["call_id"] == call["call_id"]
    assert output["output"] == "sunny in Paris"
    assert [s.state for s in responses_standin.streams()] == ["completed", "completed"]


def test_cli_prints_ready_with_its_port_and_serves():
    port = free_port()
    command = [sys.executable, "-m", "tests.responses_standin", "--port", str(port), "--deltas", "2", "--no-record"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == f"ready {port}"
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=DEFAULT_KEY, max_retries=0)
        with client:
            events = list(client.responses.create(model="m", input="hi", stream=True))
        assert _text(events) == DEFAULT_TEXT
        assert sum(e.type == "response.output_text.delta" for e in events) == 2
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
