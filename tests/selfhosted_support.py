"""Fixtures and helpers of the self-hosted ChatKit tests: a loopback Responses API and a ChatKit client's calls."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.responses_standin import ResponsesStandin


@pytest.fixture
def responses_standin() -> Iterator[ResponsesStandin]:
    """A Responses API on loopback for one test: scripted replies, recorded requests and streams, injected faults."""
    with ResponsesStandin() as standin:
        yield standin


def selfhosted_config(standin: ResponsesStandin) -> dict[str, str]:
    """Settings of an app whose ChatKit server talks to `standin` (no retries: each fault is seen once)."""
    return {
        "CHATKIT_MODE": "self_hosted",
        "OPENAI_API_KEY": standin.api_key,
        "OPENAI_BASE_URL": standin.base_url,
        "CHATKIT_MODEL_MAX_RETRIES": "0",
    }


@pytest.fixture
def selfhosted_app(make_app: Callable[..., Flask], responses_standin: ResponsesStandin) -> Flask:
    return make_app(selfhosted_config(responses_standin))


@pytest.fixture
def selfhosted_client(selfhosted_app: Flask):
    return selfhosted_app.test_client()


def new_message(text: str) -> dict[str, Any]:
    """ChatKit's `input` for a user message of `text`."""
    return {"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}}


def chatkit_post(client: Any, kind: str, params: dict[str, Any], **kwargs: Any) -> Any:
    """POST one ChatKit operation to /api/chatkit as ChatKit JS does, reading a streamed answer to its end."""
    kwargs.setdefault("buffered", True)
    return client.post("/api/chatkit", json={"type": kind, "params": params}, **kwargs)


def events_of(answer: Any) -> list[dict[str, Any]]:
    """The ChatKit events of a streamed answer (`data: <json>` frames)."""
    return parse_frames(answer.get_data(as_text=True))


def parse_frames(text: str) -> list[dict[str, Any]]:
    return [json.loads(frame[len("data: ") :]) for frame in text.split("\n\n") if frame.startswith("data: ")]


def text_of(item: dict[str, Any]) -> str:
    """The text of a user or assistant message item."""
    return "".join(part.get("text", "") for part in item.get("content", []))
