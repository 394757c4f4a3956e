"""`BackendChatKitServer`: ChatKit's server with this service's store, agent and failure handling.

`handle()` replaces `ChatKitServer.process()` for requests the route has already parsed and
validated: `process()` would parse the body again and build its request `TypeAdapter` on every
call. It relies on two of the package's internal methods, so `openai-chatkit` is pinned exactly
and `tests/test_selfhosted.py` covers every request type through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import openai
from agents import Runner
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer
from chatkit.store import AttachmentStore, NotFoundError
from chatkit.types import (
    ChatKitReq,
    FeedbackKind,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTagContent,
    is_streaming_req,
)
from openai.types.responses import ResponseInputTextParam
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from chatkit_backend.config import Settings
from chatkit_backend.errors import ApiError
from chatkit_backend.selfhosted.agent import AgentRuntime
from chatkit_backend.selfhosted.context import RequestContext
from chatkit_backend.selfhosted.store import SqlStore

log = logging.getLogger(__name__)

# Built once per process: ChatKit's process() builds it on every request (~7 ms).
REQUEST_ADAPTER: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)

# Seconds a client should wait before retrying while the database is unavailable.
DATABASE_RETRY_AFTER = "5"

__all__ = ["REQUEST_ADAPTER", "BackendChatKitServer", "contract_error", "is_streaming_req"]


class _Converter(ThreadItemConverter):
    """Thread items to model input; a tag becomes its text (the package leaves tags to the integration)."""

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}")


class _NoAttachments(AttachmentStore[RequestContext]):
    """Until uploads are configured, attachment requests are refused in the error contract."""

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        raise _attachments_not_supported()

    async def create_attachment(self, input, context: RequestContext):
        raise _attachments_not_supported()


def _attachments_not_supported() -> ApiError:
    return ApiError("not_implemented", "This server does not support that ChatKit operation.", 501)


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


def model_failure(error: BaseException) -> CustomStreamError:
    """What the user sees in ChatKit when the model call fails; the details go to the log, not the browser."""
    if isinstance(error, openai.RateLimitError):
        return CustomStreamError("The assistant is busy right now. Try again in a moment.", allow_retry=True)
    if isinstance(error, openai.APITimeoutError):
        return CustomStreamError("The assistant took too long to answer. Try again.", allow_retry=True)
    return CustomStreamError("The assistant could not answer. Try again.", allow_retry=True)


class BackendChatKitServer(ChatKitServer[RequestContext]):
    """ChatKit's protocol over `SqlStore`, answering with the configured Agents SDK agent."""

    def __init__(self, store: SqlStore, agents: AgentRuntime, settings: Settings) -> None:
        super().__init__(store, _NoAttachments())
        self.agents = agents
        self.history_items = settings.history_items
        self.converter = _Converter()

    async def handle_stream(self, request, context: RequestContext) -> AsyncIterator[bytes]:
        """The SSE frames of a streaming request (`data: <event JSON>\\n\\n` each)."""
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
        model_input = await self.converter.to_agent_input(list(reversed(page.data)))
        agent_context = AgentContext(thread=thread, store=self.store, request_context=context)
        result = Runner.run_streamed(
            self.agents.agent, model_input, context=agent_context, run_config=self.agents.run_config
        )
        try:
            async for event in stream_agent_response(agent_context, result):
                yield event
        except asyncio.CancelledError:
            result.cancel()  # the browser left: close the model's stream instead of letting it run (and bill)
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
            raise model_failure(exc) from exc
        except BaseException:
            result.cancel()  # GeneratorExit: the stream was closed without cancellation
            raise
        finally:
            _stop_waiting_for_tool_events(agent_context)

    async def add_feedback(
        self, thread_id: str, item_ids: list[str], feedback: FeedbackKind, context: RequestContext
    ) -> None:
        await self.store.load_thread(thread_id, context)  # another user's thread is NotFoundError


def _stop_waiting_for_tool_events(agent_context: AgentContext) -> None:
    """Cancel the task still waiting for events from tools when a turn ends early (the client left, the model failed).

    `stream_agent_response` reads the context's event queue in a task of its own and cancels it only when the
    run ends normally (openai-chatkit 1.6.5, agents.py `_merge_generators`); otherwise it waits forever, holding
    the turn's thread, items and store (measured: 100 clients leaving left 100 such tasks). Cancelling the
    queue's waiters ends it quietly.
    """
    for waiter in list(agent_context._events._getters):  # type: ignore[attr-defined]
        waiter.cancel()


def warm_imports() -> None:
    """Import what the Agents SDK and the openai client load lazily on the first model call (~1.6 s)."""
    import anyio._backends._asyncio  # noqa: F401
    import openai.lib.streaming
    import openai.pagination
    import openai.resources.responses  # noqa: F401
