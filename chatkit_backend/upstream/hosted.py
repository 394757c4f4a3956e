"""The hosted ChatKit sessions API over one pooled `requests.Session` per process."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from chatkit_backend.config import Settings
from chatkit_backend.upstream import ChatKitSession, StateValue, Thread, ThreadPage, UpstreamError, UpstreamNotFound

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_AFTER_CAP_SECONDS = 4.0
BACKOFF_BASE_SECONDS = 0.2
MAX_BODY_BYTES = 1024 * 1024
# API keys (`sk-…`) and client secrets (`ek_…`) never pass on in an upstream error message.
_KEY_PATTERN = re.compile(r"\b(?:sk|ek)[-_][A-Za-z0-9_\-*]{4,}")


class _Answer:
    """A complete upstream answer: status, headers and raw body."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HostedChatKit:
    """`ChatKitUpstream` for hosted Agent Builder workflows (`POST /v1/chatkit/sessions`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.api_base + "/v1/chatkit"
        self.http = requests.Session()
        # One client serves every user: a cookie from one call (an edge proxy's) must not ride on the next.
        self.http.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # Retries are ours (bounded in count and time); the adapter only pools connections.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.upstream_pool_size, max_retries=0)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        # Proxy variables (HTTPS_PROXY, NO_PROXY) are read once here instead of on every call, and no
        # ~/.netrc lookup happens per call: together about a third of requests' own time per request.
        self.http.proxies = requests.utils.get_environ_proxies(self.base)
        self.http.trust_env = False
        self.http.headers.update(
            {
                "Authorization": f"Bearer {settings.openai_api_key}",
                "OpenAI-Beta": "chatkit_beta=v1",
                "Content-Type": "application/json",
                "User-Agent": "chatkit-backend/0.1",
            }
        )
        if settings.openai_organization:
            self.http.headers["OpenAI-Organization"] = settings.openai_organization
        if settings.openai_project:
            self.http.headers["OpenAI-Project"] = settings.openai_project

    # The ChatKitUpstream protocol

    def create_session(self, user: str, state_variables: Mapping[str, StateValue] | None = None) -> ChatKitSession:
        answer = self._call("POST", "/sessions", json_body=session_request(self.settings, user, state_variables))
        if answer.status == 404:
            raise UpstreamError(
                "workflow_not_found",
                f"ChatKit does not know workflow '{self.settings.workflow_id}' for this API key. Most likely the key "
                "belongs to another organization or project than the workflow (check OPENAI_ORGANIZATION / "
                "OPENAI_PROJECT), or CHATKIT_WORKFLOW_ID is wrong. Hosted Agent Builder workflows were retired on "
                "2026-11-30: set CHATKIT_MODE=self_hosted to serve ChatKit from this server (docs/selfhosted.md).",
                502,
            )
        data = self._checked(answer)
        if not isinstance(data.get("client_secret"), str) or not data["client_secret"]:
            raise _invalid_response("the session has no client_secret")
        return _session(data)

    def cancel_session(self, session_id: str) -> ChatKitSession:
        answer = self._call("POST", f"/sessions/{_segment(session_id)}/cancel")
        return _session(self._checked(answer, not_found=f"No ChatKit session '{session_id}'."))

    def list_threads(
        self, user: str, *, limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None
    ) -> ThreadPage:
        params = {"user": user, "limit": limit, "order": order, "after": after, "before": before}
        data = self._checked(self._call("GET", "/threads", params={k: v for k, v in params.items() if v is not None}))
        try:
            return ThreadPage(
                data=[_thread(item) for item in data["data"]],
                first_id=data.get("first_id"),
                last_id=data.get("last_id"),
                has_more=bool(data.get("has_more")),
            )
        except (KeyError, TypeError):
            raise _invalid_response("the thread list is malformed") from None

    def get_thread(self, thread_id: str) -> Thread:
        answer = self._call("GET", f"/threads/{_segment(thread_id)}")
        return _thread(self._checked(answer, not_found="No such thread."))

    def delete_thread(self, thread_id: str) -> None:
        self._checked(self._call("DELETE", f"/threads/{_segment(thread_id)}"), not_found="No such thread.")

    # Transport: timeouts, bounded retries, error mapping

    def _call(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None) -> _Answer:
        """Send one logical call, retrying connection failures and 502/503/504 within the time budget."""
        settings = self.settings
        started = time.monotonic()
        # No call outlives this: the first attempt's timeouts, or the retry budget when larger.
        deadline = started + max(
            settings.upstream_connect_timeout + settings.upstream_read_timeout, settings.upstream_retry_budget_seconds
        )
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            timeout = (
                min(settings.upstream_connect_timeout, remaining),
                min(settings.upstream_read_timeout, remaining),
            )
            failure: UpstreamError
            retry_after: str | None = None
            try:
                answer = self._send(method, path, json_body, params, timeout, deadline)
            except requests.ConnectTimeout:
                failure = _timeout(method, path)
            except requests.Timeout:
                raise _timeout(method, path) from None  # the request may have been processed: no retry
            except requests.ConnectionError as exc:
                failure = _unreachable(exc)
            else:
                if answer.status not in RETRY_STATUSES:
                    return answer
                failure = _upstream_status_error(answer)
                retry_after = answer.headers.get("Retry-After")
            delay = _retry_delay(attempt, retry_after)
            if attempt >= settings.upstream_max_retries or time.monotonic() + delay >= deadline:
                log.warning(
                    "chatkit upstream failed",
                    extra={"method": method, "path": path, "attempts": attempt + 1, "code": failure.code},
                )
                raise failure
            attempt += 1
            time.sleep(delay)

    def _send(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: dict[str, Any] | None,
        timeout: tuple[float, float],
        deadline: float,
    ) -> _Answer:
        response = self.http.request(
            method, self.base + path, params=params, json=json_body, timeout=timeout, stream=True, allow_redirects=False
        )
        with response:
            body = _read_body(response, method, path, deadline)
        return _Answer(response.status_code, response.headers, body)

    def _checked(self, answer: _Answer, *, not_found: str | None = None) -> dict[str, Any]:
        """The JSON object of a 2xx answer; every other answer becomes the matching UpstreamError."""
        if answer.status == 404 and not_found is not None:
            raise UpstreamNotFound(not_found)
        if not 200 <= answer.status < 300:
            raise _upstream_status_error(answer)
        data = answer.json()
        if not isinstance(data, dict):
            raise _invalid_response("the answer is not a JSON object")
        return data


def session_request(
    settings: Settings, user: str, state_variables: Mapping[str, StateValue] | None = None
) -> dict[str, Any]:
    """The body of `POST /chatkit/sessions`: workflow, user and the configured session options."""
    workflow: dict[str, Any] = {"id": settings.workflow_id}
    if settings.workflow_version:
        workflow["version"] = settings.workflow_version
    if state_variables:
        workflow["state_variables"] = dict(state_variables)
    body: dict[str, Any] = {"user": user, "workflow": workflow}
    if settings.session_expires_seconds is not None:
        body["expires_after"] = {"anchor": "created_at", "seconds": settings.session_expires_seconds}
    if settings.session_max_requests_per_minute is not None:
        body["rate_limits"] = {"max_requests_per_1_minute": settings.session_max_requests_per_minute}
    configuration: dict[str, Any] = {}
    if settings.automatic_thread_titling is not None:
        configuration["automatic_thread_titling"] = {"enabled": settings.automatic_thread_titling}
    file_upload = _present(
        enabled=settings.file_upload_enabled,
        max_files=settings.file_upload_max_files,
        max_file_size=settings.file_upload_max_file_size_mb,
    )
    if file_upload:
        configuration["file_upload"] = file_upload
    history = _present(enabled=settings.history_enabled, recent_threads=settings.history_recent_threads)
    if history:
        configuration["history"] = history
    if configuration:
        body["chatkit_configuration"] = configuration
    return body


def _present(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _read_body(response: requests.Response, method: str, path: str, deadline: float) -> bytes:
    """Read the whole body by `deadline`, even if the upstream drips bytes slowly.

    A failure here comes after the upstream processed the request, so it is raised as the final
    UpstreamError (never retried).
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise _timeout(method, path)
            chunk = response.raw.read1(65536)  # what has arrived, so the deadline is checked between pieces
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _invalid_response("the answer is larger than 1 MB")
            chunks.append(chunk)
    except ReadTimeoutError:
        raise _timeout(method, path) from None
    except Urllib3Error as exc:
        raise _unreachable(exc) from None


def _retry_delay(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), RETRY_AFTER_CAP_SECONDS)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return BACKOFF_BASE_SECONDS * (2**attempt) * random.uniform(0.5, 1.0)


def upstream_message(answer: _Answer) -> str:
    """The upstream's error message, without anything that looks like a key, for the operator."""
    data = answer.json()
    message = ""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        message = str(data["error"].get("message") or "")
    message = _KEY_PATTERN.sub("[redacted]", message)[:300]
    return f" ChatKit said: {message}" if message else ""


def _upstream_status_error(answer: _Answer) -> UpstreamError:
    status = answer.status
    said = upstream_message(answer)
    if status in (401, 403):
        return UpstreamError(
            "upstream_auth_failed",
            f"ChatKit refused the API key ({status}): check OPENAI_API_KEY and its organization/project.{said}",
            502,
        )
    if status == 429:
        retry_after = _retry_after_header(answer.headers.get("Retry-After"))
        return UpstreamError(
            "upstream_rate_limited",
            f"ChatKit is rate limiting this service; retry after {retry_after} seconds.",
            503,
            headers={"Retry-After": retry_after},
        )
    if status >= 500:
        return UpstreamError("upstream_error", f"ChatKit failed with status {status}; retry later.", 502)
    return UpstreamError("upstream_bad_request", f"ChatKit rejected the request ({status}).{said}", 502)


def _retry_after_header(value: str | None) -> str:
    try:
        return str(min(max(round(float(value or "")), 1), 60))
    except ValueError:
        return "1"


def _timeout(method: str, path: str) -> UpstreamError:
    log.warning("chatkit upstream timed out", extra={"method": method, "path": path})
    return UpstreamError("upstream_timeout", "ChatKit did not answer in time; retry later.", 504)


def _unreachable(exc: BaseException) -> UpstreamError:
    return UpstreamError(
        "upstream_unreachable",
        f"Could not reach ChatKit ({type(exc).__name__}): check CHATKIT_API_BASE, DNS, TLS and egress.",
        502,
    )


def _invalid_response(what: str) -> UpstreamError:
    return UpstreamError("upstream_invalid_response", f"ChatKit sent an answer this service cannot use: {what}.", 502)


def _segment(identifier: str) -> str:
    return quote(identifier, safe="")


def _session(data: dict[str, Any]) -> ChatKitSession:
    try:
        return ChatKitSession(
            id=str(data["id"]),
            client_secret=str(data.get("client_secret") or ""),
            expires_at=int(data["expires_at"]),
            status=str(data.get("status") or "active"),
            user=str(data.get("user") or ""),
            workflow_id=str((data.get("workflow") or {}).get("id") or ""),
        )
    except (KeyError, TypeError, ValueError):
        raise _invalid_response("the session object is malformed") from None


def _thread(data: dict[str, Any]) -> Thread:
    try:
        return Thread(
            id=str(data["id"]),
            user=str(data["user"]),
            created_at=int(data["created_at"]),
            title=data.get("title"),
            status=data.get("status") or {"type": "active"},
        )
    except (KeyError, TypeError, ValueError):
        raise _invalid_response("the thread object is malformed") from None
