"""`BackendChatKitServer`: ChatKit's server with this service's store, agent and failure handling.

`handle()` replaces `ChatKitServer.process()` for requests the route has already parsed and
validated: `process()` would parse the body again and build its request `TypeAdapter` on every
call. It relies on two of the package's internal methods, so `openai-chatkit` is pinned exactly
and `tests/test_selfhosted.py` covers every request type through it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agents import Runner
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer
from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    Action,
    Attachment,
    ChatKitReq,
    FeedbackKind,
    FileAttachment,
    HiddenContextItem,
    ImageAttachment,
    ThreadItemDoneEvent,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WidgetItem,
    is_streaming_req,
)
from openai.types.responses import (
    ResponseInputContentParam,
    ResponseInputFileParam,
    ResponseInputImageParam,
    ResponseInputTextParam,
)
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from chatkit_backend.config import Settings
from chatkit_backend.errors import ApiError
from chatkit_backend.selfhosted.agent import AgentRuntime
from chatkit_backend.selfhosted.context import RequestContext
from chatkit_backend.selfhosted.store import SqlStore, new_id
from chatkit_backend.selfhosted.turns import CANCELLED, TurnRecorder, error_kind, model_name
from chatkit_backend.selfhosted.uploads import IMAGE_TYPES, BlobStore

if TYPE_CHECKING:
    from chatkit_backend.metrics import Metrics

log = logging.getLogger(__name__)

# Built once per process: ChatKit's process() builds it on every request (~7 ms).
REQUEST_ADAPTER: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

# Seconds a client should wait before retrying while the database is unavailable.
DATABASE_RETRY_AFTER = "5"

__all__ = ["REQUEST_ADAPTER", "BackendChatKitServer", "contract_error", "is_streaming_req"]

TITLE_LENGTH = 60
# A text upload is sent to the model whole up to this many characters (~50k tokens).
MAX_TEXT_CHARACTERS = 200_000
TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for a conversation that starts with the user's message. "
    "Answer with the title only, no quotes."
)


class _Converter(ThreadItemConverter):
    """Thread items to model input: a tag becomes its text, an attachment its bytes (the package leaves both to us)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}")

    async def attachment_to_message_content(self, attachment: Attachment) -> ResponseInputContentParam:
        # Items only hold attachments their owner attached (SqlStore.load_attachment is per user).
        data = await self.store.run_blocking(self.store.blobs.get, attachment.id)
        if data is None:
            return ResponseInputTextParam(type="input_text", text=f"[The attached file {attachment.name} was deleted.]")
        encoded = base64.b64encode(data).decode("ascii")
        if attachment.mime_type in IMAGE_TYPES:
            return ResponseInputImageParam(
                type="input_image", image_url=f"data:{attachment.mime_type};base64,{encoded}", detail="auto"
            )
        if attachment.mime_type == "application/pdf":
            return ResponseInputFileParam(
                type="input_file", filename=attachment.name, file_data=f"data:application/pdf;base64,{encoded}"
            )
        text = data.decode("utf-8", errors="replace")
        if len(text) > MAX_TEXT_CHARACTERS:
            text = text[:MAX_TEXT_CHARACTERS] + "\n[truncated]"
        return ResponseInputTextParam(type="input_text", text=f"Attached file {attachment.name}:\n{text}")


class UploadedAttachments(AttachmentStore[RequestContext]):
    """Direct uploads (`POST /api/chatkit/attachments`): bytes in the blob store, the record in `SqlStore`."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def generate_attachment_id(self, mime_type: str, context: RequestContext) -> str:
        return new_id("attachment")

    async def upload(
        self, attachment_id: str, name: str, mime_type: str, data: bytes, preview_url: str | None, ctx: RequestContext
    ) -> Attachment:
        """Keep the bytes, then the record; the answer ChatKit expects from a direct upload."""
        size = {"size": len(data)}
        attachment: Attachment = (
            ImageAttachment(id=attachment_id, name=name, mime_type=mime_type, preview_url=preview_url, metadata=size)
            if mime_type in IMAGE_TYPES
            else FileAttachment(id=attachment_id, name=name, mime_type=mime_type, metadata=size)
        )
        await self.store.run_blocking(self.store.blobs.put, attachment_id, ctx.user, data)
        try:
            await self.store.save_attachment(attachment, ctx)
        except BaseException:
            await self.store.run_blocking(self.store.blobs.delete, [attachment_id])
            raise
        return attachment

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        await self.store.load_attachment(attachment_id, context)  # another user's attachment is NotFoundError
        await self.store.run_blocking(self.store.blobs.delete, [attachment_id])

    async def create_attachment(self, input, context: RequestContext):
        # Two-phase uploads are not offered: the browser helper sets ChatKit's direct upload strategy.
        raise NotImplementedError("two-phase uploads")


def title_from(message: UserMessageItem) -> str | None:
    """A short title from the user's first message: its first words, at most TITLE_LENGTH characters."""
    words = " ".join(part.text for part in message.content if isinstance(part, UserMessageTextContent)).split()
    title = ""
    for word in words:
        if len(title) + len(word) + 1 > TITLE_LENGTH:
            return (title or word[: TITLE_LENGTH - 1]) + "…"
        title = f"{title} {word}".strip()
    return title or None


def contract_error(error: Exception) -> Exception:
    """What ChatKit raised before an answer started, as the error contract's ApiError where it has a meaning."""
    if isinstance(error, ApiError):
        return error
    if _database_unavailable(error):
        log.warning("chatkit request failed: the database is unavailable (%s)", type(error).__name__)
        return ApiError(
            "database_unavailable",
            "The conversation store is unavailable right now; retry in a few seconds.",
            503,
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    if isinstance(error, NotFoundError):
        return ApiError("not_found", "No such thread, item or attachment.", 404)
    if isinstance(error, NotImplementedError):
        return ApiError("not_implemented", "This server does not support that ChatKit operation.", 501)
    if isinstance(error, ValueError):
        # ChatKit's own checks of a request against the thread (e.g. a retry of an item that is not a user message).
        return ApiError(
            "validation_error",
            "The request does not fit the thread.",
            400,
            details=[{"field": "params", "message": str(error)}],
        )
    return error


def _database_unavailable(error: Exception) -> bool:
    """The database could not be reached or dropped the connection (not a bad statement or a conflict)."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


# What the user sees in ChatKit when the model call fails, by error_kind(); the details go to the log.
_FAILURE_MESSAGES = {
    "rate_limited": "The assistant is busy right now. Try again in a moment.",
    "timeout": "The assistant took too long to answer. Try again.",
}


def model_failure(kind: str) -> CustomStreamError:
    """The ChatKit error event for a failed model call of `kind` (turns.error_kind)."""
    message = _FAILURE_MESSAGES.get(kind, "The assistant could not answer. Try again.")
    return CustomStreamError(message, allow_retry=True)


class BackendChatKitServer(ChatKitServer[RequestContext]):
    """ChatKit's protocol over `SqlStore`, answering with the configured Agents SDK agent."""

    def __init__(
        self,
        store: SqlStore,
        agents: AgentRuntime,
        settings: Settings,
        blobs: BlobStore,
        metrics: Metrics | None = None,
    ) -> None:
        self.attachments = UploadedAttachments(store)
        super().__init__(store, self.attachments)
        self.store: SqlStore = store
        self.agents = agents
        self.metrics = metrics
        self.history_items = settings.history_items
        self.auto_title = settings.auto_title
        self.title_model = settings.title_model
        self._background: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.agents.close()

    async def handle_stream(self, request, context: RequestContext) -> AsyncIterator[bytes]:
        """The SSE frames of a streaming request (`data: <event JSON>\\n\\n` each)."""
        if isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
            for attachment_id in request.params.input.attachments:
                # Before anything is stored or sent: another user's attachment is a 404, never model input.
                await self.store.load_attachment(attachment_id, context)
        async for frame in self._process_streaming(request, context):
            yield frame

    async def handle_json(self, request, context: RequestContext) -> bytes:
        """The JSON answer of a non-streaming request."""
        return await self._process_non_streaming(request, context)

    async def respond(
        self, thread: ThreadMetadata, input_user_message: UserMessageItem | None, context: RequestContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        # The newest items, oldest first: the model sees the conversation so far, in order.
        page = await self.store.load_thread_items(thread.id, None, self.history_items, "desc", context)
        model_input = await _Converter(self.store).to_agent_input(list(reversed(page.data)))
        agent_context = AgentContext(thread=thread, store=self.store, request_context=context)
        result = Runner.run_streamed(
            self.agents.agent,
            model_input,
            context=agent_context,
            run_config=self.agents.run_config,
            hooks=self.agents.hooks,
        )
        turn = TurnRecorder(self.store.database, thread.id, context.user, model_name(self.agents.agent), self.metrics)
        try:
            async for event in stream_agent_response(agent_context, result):
                turn.observe(event)
                yield event
        except asyncio.CancelledError:
            result.cancel()  # the browser left: close the model's stream instead of letting it run (and bill)
            self._in_background(turn.save(result.context_wrapper.usage, CANCELLED), context)
            raise
        except Exception as exc:
            result.cancel()
            log.warning(
                "model call failed: %s",
                type(exc).__name__,
                extra={
                    "request_id": context.request_id,
                    "user": context.user,
                    "thread_id": thread.id,
                    "status": getattr(exc, "status_code", None),
                },
            )
            kind = error_kind(exc)
            await turn.save(result.context_wrapper.usage, kind)
            raise model_failure(kind) from exc
        except BaseException:
            result.cancel()  # GeneratorExit: the stream was closed without cancellation
            raise
        finally:
            _stop_waiting_for_tool_events(agent_context)
        await turn.save(result.context_wrapper.usage)
        if self.auto_title and thread.title is None and input_user_message is not None:
            self._title(thread, input_user_message, context)

    def _title(self, thread: ThreadMetadata, message: UserMessageItem, context: RequestContext) -> None:
        """Name the thread once its first answer is out: its first words now, or a title model's later."""
        if self.title_model is None:
            thread.title = title_from(message)  # ChatKit saves the thread and tells the browser (thread.updated)
        else:
            self._in_background(self._title_by_model(thread.id, message, context), context)

    async def _title_by_model(self, thread_id: str, message: UserMessageItem, context: RequestContext) -> None:
        text = " ".join(part.text for part in message.content if isinstance(part, UserMessageTextContent))
        response = await self.agents.client.responses.create(
            model=self.title_model, instructions=TITLE_INSTRUCTIONS, input=text[:2000] or "(no text)", store=False
        )
        title = " ".join(response.output_text.strip().strip('"').split())[:TITLE_LENGTH] or title_from(message)
        thread = await self.store.load_thread(thread_id, context)
        if thread.title is None:
            thread.title = title
            await self.store.save_thread(thread, context)

    def _in_background(self, work: Coroutine[Any, Any, None], context: RequestContext) -> None:
        """Run `work` after the answer, keeping a reference (the loop keeps only weak ones) and logging failures."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                error = finished.exception()
                log.warning(
                    "background work after a turn failed: %s",
                    type(error).__name__,
                    extra={"request_id": context.request_id, "user": context.user},
                )

        task.add_done_callback(done)

    async def action(
        self, thread: ThreadMetadata, action: Action[str, Any], sender: WidgetItem | None, context: RequestContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        # A widget's action is something the user said by clicking: the agent hears it as hidden context.
        payload = json.dumps(action.payload, ensure_ascii=False, default=str)[:4000]
        note = HiddenContextItem(
            id=self.store.generate_item_id("message", thread, context),
            thread_id=thread.id,
            created_at=datetime.now(),
            content=f"The user chose the widget action {action.type!r} with payload {payload}.",
        )
        yield ThreadItemDoneEvent(item=note)
        async for event in self.respond(thread, None, context):
            yield event

    async def add_feedback(
        self, thread_id: str, item_ids: list[str], feedback: FeedbackKind, context: RequestContext
    ) -> None:
        await self.store.load_thread(thread_id, context)  # another user's thread is NotFoundError
        await self.store.save_feedback(thread_id, item_ids, feedback, context)


def _stop_waiting_for_tool_events(agent_context: AgentContext) -> None:
    """Cancel the task still waiting for events from tools when a turn ends early (the client left, the model failed).

    `stream_agent_response` reads the context's event queue in a task of its own and cancels it only when the
    run ends normally (openai-chatkit 1.6.5, agents.py `_merge_generators`); otherwise it waits forever, holding
    the turn's thread, items and store (measured: 100 clients leaving left 100 such tasks). Cancelling the
    queue's waiters ends it quietly.
    """
    for waiter in list(agent_context._events._getters):  # type: ignore[attr-defined]
        waiter.cancel()
