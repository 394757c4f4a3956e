"""`POST /api/chatkit`: ChatKit's protocol. Route → identity and limits → validation → ChatKit server → answer.

Every operation is a POST of `{"type", "params"}` to this one URL. Streaming operations answer
`text/event-stream`; the others JSON. Requests that make the model work (a new message, a retry, a
tool's output, an action) count against the message limits, the rest against the looser read ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException

from chatkit_backend.errors import ApiError, get_json_body, validation_error
from chatkit_backend.identity import current_user
from chatkit_backend.rate_limits import client_address, limiter, user_key
from chatkit_backend.selfhosted import get_chatkit
from chatkit_backend.selfhosted.bridge import ChunkStream, gunicorn_client_gone
from chatkit_backend.selfhosted.context import RequestContext

log = logging.getLogger(__name__)

bp = Blueprint("selfhosted", __name__, url_prefix="/api/chatkit")

# ChatKit's request types (openai-chatkit 1.6.5; a test compares them with the package's), and those that
# make the model work.
MODEL_REQUEST_TYPES = frozenset(
    {
        "threads.create",
        "threads.add_user_message",
        "threads.add_client_tool_output",
        "threads.add_structured_input",
        "threads.retry_after_item",
        "threads.custom_action",
        "threads.sync_custom_action",
    }
)
REQUEST_TYPES = MODEL_REQUEST_TYPES | {
    "threads.get_by_id",
    "threads.list",
    "threads.update",
    "threads.delete",
    "items.list",
    "items.feedback",
    "attachments.create",
    "attachments.delete",
    "input.transcribe",
}
# Shown in the stream when it fails after it started (the HTTP status is already 200).
STREAM_FAILED_FRAME = b'data: {"type":"error","code":"stream.error","allow_retry":true}\n\n'
MAX_DETAILS = 10
# Room for the multipart envelope around an upload's bytes (boundaries, part headers, the file name).
MULTIPART_OVERHEAD = 64 * 1024


def _settings() -> Any:
    return current_app.config["SETTINGS"]


def _body() -> Any:
    """The request's JSON body, parsed once per request (the limits peek at its type)."""
    if "chatkit_body" not in g:
        try:
            g.chatkit_body = get_json_body(required=True)
        except (ApiError, HTTPException) as error:
            # Kept for the view to raise: raised here, inside a limit's exempt_when, flask-limiter would
            # swallow it and switch the whole process to its in-memory fallback storage (an oversized body: 413).
            g.chatkit_body = error
    return g.chatkit_body


def _request_type() -> str | None:
    body = _body()
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None


def _calls_model() -> bool:
    return _request_type() in MODEL_REQUEST_TYPES


def _reads() -> bool:
    return not _calls_model()


_message_per_user = limiter.limit(
    lambda: _settings().message_rate_limit, key_func=user_key, scope="chatkit-message-user", exempt_when=_reads
)
_message_per_address = limiter.limit(
    lambda: _settings().message_rate_limit_per_address,
    key_func=client_address,
    scope="chatkit-message-address",
    exempt_when=_reads,
)
_read_per_user = limiter.limit(
    lambda: _settings().read_rate_limit, key_func=user_key, scope="chatkit-read-user", exempt_when=_calls_model
)
_read_per_address = limiter.limit(
    lambda: _settings().read_rate_limit_per_address,
    key_func=client_address,
    scope="chatkit-read-address",
    exempt_when=_calls_model,
)


# Uploads cost like messages (bytes kept, later model input); they count against the message limits' values.
_upload_per_user = limiter.limit(lambda: _settings().message_rate_limit, key_func=user_key, scope="chatkit-upload-user")
_upload_per_address = limiter.limit(
    lambda: _settings().message_rate_limit_per_address, key_func=client_address, scope="chatkit-upload-address"
)
_preview_per_address = limiter.limit(
    lambda: _settings().read_rate_limit_per_address, key_func=client_address, scope="chatkit-preview-address"
)


@bp.post("")
@_message_per_user
@_message_per_address
@_read_per_user
@_read_per_address
def chatkit():
    """One ChatKit operation for the current user: JSON, or a stream of ChatKit events."""
    body = _body()
    if isinstance(body, ApiError | HTTPException):
        raise body
    _check_envelope(body)
    chatkit = get_chatkit()
    server = chatkit.server
    from chatkit_backend.selfhosted.server import REQUEST_ADAPTER, contract_error, is_streaming_req

    parsed = _validated(REQUEST_ADAPTER, body)
    context = RequestContext(user=current_user(), request_id=g.get("request_id"), locale=_locale())
    try:
        if not is_streaming_req(parsed):
            return Response(chatkit.bridge.run(server.handle_json(parsed, context)), mimetype="application/json")
        stream = chatkit.bridge.stream(server.handle_stream(parsed, context), gunicorn_client_gone(request.environ))
        try:
            # Pulled before the status is sent: an unknown thread is a 404, not an error inside a 200 stream.
            first = next(stream)
        except BaseException:
            stream.close()
            raise
    except StopIteration:
        raise ApiError("not_found", "No such item in this thread.", 404) from None
    except Exception as error:  # noqa: BLE001 - mapped onto the contract, or re-raised as it was
        raise contract_error(error) from None
    return Response(
        _frames(first, stream, context),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _check_envelope(body: Any) -> None:
    """`{"type": <a ChatKit request type>, "params": {...}}`, checked before anything else (and in hosted mode)."""
    if not isinstance(body, dict):
        raise validation_error([{"field": "body", "message": "must be an object"}])
    if _request_type() not in REQUEST_TYPES:
        raise validation_error([{"field": "type", "message": "must be one of " + ", ".join(sorted(REQUEST_TYPES))}])
    if not isinstance(body.get("params", {}), dict):
        raise validation_error([{"field": "params", "message": "must be an object"}])


def _validated(adapter: Any, body: Any) -> Any:
    from pydantic import ValidationError

    try:
        return adapter.validate_python(body)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)[:MAX_DETAILS]
        ]
        raise validation_error(details, "The body is not a valid ChatKit request.") from None


def _frames(first: bytes, stream: ChunkStream, context: RequestContext) -> Iterator[bytes]:
    """The answer's SSE frames; a failure after the first one ends the stream with ChatKit's error event."""
    try:
        yield first
        yield from stream
    except Exception:
        log.exception("chatkit stream failed", extra={"request_id": context.request_id, "user": context.user})
        yield STREAM_FAILED_FRAME
    finally:
        stream.close()


def _locale() -> str | None:
    language = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return language[:35] or None


@bp.post("/attachments")
@_upload_per_user
@_upload_per_address
def upload_attachment():
    """ChatKit's direct upload: one `file` field of `multipart/form-data`, kept for the current user."""
    from chatkit_backend.selfhosted.store import new_id
    from chatkit_backend.selfhosted.uploads import sniff

    chatkit = get_chatkit()
    settings = chatkit.settings
    # Set before the body is read: this route alone takes bodies over MAX_CONTENT_LENGTH (413 beyond its own).
    request.max_content_length = max(settings.max_content_length, settings.upload_max_bytes + MULTIPART_OVERHEAD)
    if request.mimetype != "multipart/form-data":
        raise ApiError("unsupported_media_type", "Send the file as multipart/form-data with a 'file' field.", 415)
    upload = request.files.get("file")
    if upload is None:
        raise validation_error([{"field": "file", "message": "is required"}])
    data = upload.stream.read(settings.upload_max_bytes + 1)
    if len(data) > settings.upload_max_bytes:
        raise ApiError(
            "payload_too_large",
            f"The file is larger than {settings.upload_max_bytes} bytes (CHATKIT_UPLOAD_MAX_BYTES).",
            413,
        )
    mime_type = sniff(data)
    if mime_type not in settings.upload_types:
        raise ApiError(
            "unsupported_media_type",
            "This file type is not accepted; allowed: " + ", ".join(settings.upload_types) + ".",
            415,
        )
    context = RequestContext(user=current_user(), request_id=g.get("request_id"), locale=_locale())
    attachment_id = new_id("attachment")
    preview_url = None
    if mime_type.startswith("image/"):
        preview_url = _preview_url(attachment_id, settings.secret_key)
    name = _file_name(upload.filename)
    attachment = chatkit.bridge.run(
        chatkit.server.attachments.upload(attachment_id, name, mime_type, data, preview_url, context)
    )
    body = attachment.model_dump_json(by_alias=True, exclude_none=True, context={"exclude_metadata": True})
    return Response(body, mimetype="application/json")


@bp.get("/attachments/<attachment_id>/preview")
@_preview_per_address
def attachment_preview(attachment_id: str):
    """An uploaded image, for whoever holds the signed link its upload answered (ChatKit's frame has no cookies)."""
    from chatkit_backend.selfhosted.uploads import IMAGE_TYPES, preview_signature_is_valid, sniff

    chatkit = get_chatkit()
    signature = request.args.get("sig", "")
    if not preview_signature_is_valid(chatkit.settings.secret_key, attachment_id, signature):
        raise ApiError("not_found", "No such attachment.", 404)
    data = chatkit.bridge.run(chatkit.server.store.run_blocking(chatkit.server.store.blobs.get, attachment_id))
    mime_type = sniff(data) if data is not None else None
    if mime_type not in IMAGE_TYPES:
        raise ApiError("not_found", "No such attachment.", 404)
    response = Response(data, mimetype=mime_type)
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # shown inside ChatKit's frame
    return response


def _preview_url(attachment_id: str, secret_key: str) -> str:
    from chatkit_backend.selfhosted.uploads import preview_signature

    signature = preview_signature(secret_key, attachment_id)
    return url_for("selfhosted.attachment_preview", attachment_id=attachment_id, sig=signature, _external=True)


def _file_name(raw: str | None) -> str:
    """The name shown in the chat: the browser's, without folders or control characters, at most 255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"
