"""One throwaway ChatKit turn, in process, so that a new worker's first real answer is as fast as its second.

The first turn in a process pays ~1.5 s of lazy imports and pydantic schema building in the openai
client, the Agents SDK and ChatKit. `warm_turn` pays it before the worker takes requests: a
`threads.create` through the real server and store, whose model client's transport is an
`httpx2.MockTransport` serving a canned Responses stream, and whose database is a throwaway SQLite
file. Neither the model nor the service's database is touched.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

import httpx2
from agents import RunConfig
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI

import chatkit_backend.models  # noqa: F401 - every table on metadata, for the throwaway database
from chatkit_backend.config import Settings
from chatkit_backend.db import Database, metadata
from chatkit_backend.selfhosted.agent import AgentRuntime, ToolProgress, build_agent
from chatkit_backend.selfhosted.context import RequestContext
from chatkit_backend.selfhosted.server import REQUEST_ADAPTER, BackendChatKitServer
from chatkit_backend.selfhosted.store import SqlStore
from chatkit_backend.selfhosted.uploads import DatabaseBlobs

# What ChatKit JS posts for a new thread.
_NEW_THREAD = {
    "type": "threads.create",
    "params": {
        "input": {"content": [{"type": "input_text", "text": "warm up"}], "attachments": [], "inference_options": {}}
    },
}
_ID = "warmup0000000000000000000000000000"


def _canned_stream(request: httpx2.Request) -> httpx2.Response:
    """A complete text answer in the Responses API's streaming events."""
    body = json.loads(request.content)
    part = {"type": "output_text", "text": "ok", "annotations": []}
    message = {"id": "msg_" + _ID, "type": "message", "role": "assistant", "status": "completed", "content": [part]}
    response = {
        "id": "resp_" + _ID,
        "object": "response",
        "created_at": 0,
        "status": "in_progress",
        "model": body.get("model"),
        "output": [],
        # Every field the API sends: the client builds a validator per field type on first sight.
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }
    usage = {
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2,
    }
    completed = {**response, "status": "completed", "output": [message], "usage": usage}
    where = {"output_index": 0, "item_id": message["id"], "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": {**message, "status": "in_progress"}},
        {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
        {"type": "response.output_text.delta", **where, "delta": "ok", "logprobs": []},
        {"type": "response.output_text.done", **where, "text": "ok", "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": completed},
    ]
    sse = "".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': n})}\n\n" for n, e in enumerate(events)
    )
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse.encode())


async def warm_turn(settings: Settings) -> None:
    """Run one `threads.create` turn against the canned stream; raises if the turn does not complete."""
    client = AsyncOpenAI(
        api_key="sk-warmup",
        base_url="http://warmup.invalid/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(_canned_stream)),
    )
    run_config = RunConfig(model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)
    runtime = AgentRuntime(agent=build_agent(settings), run_config=run_config, client=client, hooks=ToolProgress())
    with tempfile.TemporaryDirectory(prefix="chatkit-warmup-") as folder:
        # The real store on a throwaway SQLite file: its statements are compiled and cached here too.
        database = Database(f"sqlite:///{folder}/warmup.sqlite3")
        metadata.create_all(database.engine)
        blobs = DatabaseBlobs(database)
        server = BackendChatKitServer(SqlStore(database, blobs), runtime, settings, blobs)
        request = REQUEST_ADAPTER.validate_python(_NEW_THREAD)
        try:
            frames = [frame async for frame in server.handle_stream(request, RequestContext("warmup", None, None))]
        finally:
            await runtime.close()
            database.engine.dispose()
    if not any(b'"assistant_message"' in frame and b"thread.item.done" in frame for frame in frames):
        raise RuntimeError("the warm-up turn did not produce an answer: " + frames[-1].decode()[:200])
