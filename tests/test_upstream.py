"""The ChatKit client: what the upstream receives, retries, timeouts and the error mapping, against the stand-in."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chatkit_backend.config import Settings
from chatkit_backend.upstream import EXTENSION_KEY
from chatkit_backend.upstream.hosted import HostedChatKit
from tests.conftest import free_port

SESSIONS = "/v1/chatkit/sessions"


@pytest.fixture
def upstream_app(make_app, chatkit_config):
    return make_app(chatkit_config)


@pytest.fixture
def browser(upstream_app):
    return upstream_app.test_client()


def _create(browser, **kwargs):
    return browser.post("/api/chatkit/session", **kwargs)


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


def test_create_sends_the_documented_headers_workflow_and_user(make_app, chatkit_config, chatkit_standin):
    app = make_app(chatkit_config, OPENAI_ORGANIZATION="org_1", OPENAI_PROJECT="proj_1", CHATKIT_WORKFLOW_VERSION="3")
    response = _create(app.test_client())
    [sent] = chatkit_standin.requests_to(SESSIONS, "POST")
    assert response.status_code == 200
    assert sent.header("Authorization") == f"Bearer {chatkit_standin.api_key}"
    assert sent.header("OpenAI-Beta") == "chatkit_beta=v1"
    assert sent.header("Content-Type") == "application/json"
    assert sent.header("OpenAI-Organization") == "org_1"
    assert sent.header("OpenAI-Project") == "proj_1"
    assert sent.body["workflow"] == {"id": chatkit_standin.workflow_id, "version": "3"}
    assert sent.body["user"].startswith("anon_")


def test_create_sends_the_configured_session_options(make_app, chatkit_config, chatkit_standin):
    app = make_app(
        chatkit_config,
        CHATKIT_SESSION_EXPIRES_SECONDS="300",
        CHATKIT_SESSION_MAX_REQUESTS_PER_MINUTE="20",
        CHATKIT_FILE_UPLOAD_ENABLED="true",
        CHATKIT_FILE_UPLOAD_MAX_FILES="3",
        CHATKIT_FILE_UPLOAD_MAX_FILE_SIZE_MB="8",
        CHATKIT_HISTORY_ENABLED="false",
        CHATKIT_AUTOMATIC_THREAD_TITLING="false",
    )
    assert _create(app.test_client()).status_code == 200
    [sent] = chatkit_standin.requests_to(SESSIONS, "POST")
    assert sent.body["expires_after"] == {"anchor": "created_at", "seconds": 300}
    assert sent.body["rate_limits"] == {"max_requests_per_1_minute": 20}
    assert sent.body["chatkit_configuration"] == {
        "automatic_thread_titling": {"enabled": False},
        "file_upload": {"enabled": True, "max_files": 3, "max_file_size": 8},
        "history": {"enabled": False},
    }


def test_without_options_only_workflow_and_user_are_sent(browser, chatkit_standin):
    assert _create(browser).status_code == 200
    [sent] = chatkit_standin.requests_to(SESSIONS, "POST")
    assert set(sent.body) == {"workflow", "user"}


def test_pool_is_sized_from_settings(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_UPSTREAM_POOL_SIZE="7")
    client = app.extensions[EXTENSION_KEY]
    assert client.http.get_adapter(chatkit_config["CHATKIT_API_BASE"])._pool_maxsize == 7


def test_connections_are_reused_between_calls(chatkit_standin, chatkit_config):
    client = HostedChatKit(Settings.from_env({"CHATKIT_ENV": "test", **chatkit_config}))
    for _ in range(3):
        client.list_threads("u1")
    assert len({r.client_port for r in chatkit_standin.requests}) == 1


# One test per row of the error mapping.


def test_not_configured_is_503(client):
    response = _create(client)
    assert response.status_code == 503
    assert _error_code(response) == "not_configured"


def test_upstream_400_is_502_upstream_bad_request_with_its_message(browser, chatkit_standin):
    chatkit_standin.inject("status", status=400, message="Invalid 'workflow.version'.")
    response = _create(browser)
    assert response.status_code == 502
    assert _error_code(response) == "upstream_bad_request"
    assert "Invalid 'workflow.version'." in response.get_json()["error"]["message"]


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failure_is_502_upstream_auth_failed_without_the_key(browser, chatkit_standin, status):
    chatkit_standin.inject("status", status=status, message=f"Incorrect API key provided: {chatkit_standin.api_key}.")
    response = _create(browser)
    assert response.status_code == 502
    assert _error_code(response) == "upstream_auth_failed"
    assert chatkit_standin.api_key not in response.get_data(as_text=True)


def test_upstream_error_message_never_passes_on_a_client_secret(browser, chatkit_standin):
    # Client secrets are `ek_…` (underscore): the relay once only knew `sk-`/`ek-`.
    chatkit_standin.inject("status", status=400, message="Session ek_68f1a2b3c4d5e6f7_secret_AbCd is not valid.")
    response = _create(browser)
    assert response.status_code == 502
    assert "ek_68f1a2b3c4d5e6f7" not in response.get_data(as_text=True)
    assert "[redacted]" in response.get_json()["error"]["message"]


def test_wrong_key_is_upstream_auth_failed(make_app, chatkit_config):
    app = make_app(chatkit_config, OPENAI_API_KEY="sk-wrong-key-123456")
    response = _create(app.test_client())
    assert _error_code(response) == "upstream_auth_failed"
    assert "sk-wrong-key-123456" not in response.get_data(as_text=True)


def test_unknown_workflow_is_502_workflow_not_found_naming_the_likely_cause(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_WORKFLOW_ID="wf_elsewhere")
    response = _create(app.test_client())
    message = response.get_json()["error"]["message"]
    assert response.status_code == 502
    assert _error_code(response) == "workflow_not_found"
    assert "organization or project" in message
    assert "wf_elsewhere" in message
    assert "retired on 2026-11-30" in message
    assert "CHATKIT_MODE=self_hosted" in message


def test_upstream_429_is_503_upstream_rate_limited_with_retry_after(browser, chatkit_standin):
    chatkit_standin.inject("status", status=429, retry_after="12")
    response = _create(browser)
    assert response.status_code == 503
    assert _error_code(response) == "upstream_rate_limited"
    assert response.headers["Retry-After"] == "12"
    assert len(chatkit_standin.requests_to(SESSIONS)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_upstream_5xx_after_retries_is_502_upstream_error(browser, chatkit_standin, status):
    chatkit_standin.inject("status", status=status, times=10)
    response = _create(browser)
    assert response.status_code == 502
    assert _error_code(response) == "upstream_error"


def test_timeout_is_504_upstream_timeout_within_the_bound(make_app, chatkit_config, chatkit_standin):
    app = make_app(chatkit_config, CHATKIT_READ_TIMEOUT="0.3", CHATKIT_RETRY_BUDGET_SECONDS="0")
    chatkit_standin.inject("hang", seconds=10)
    started = time.monotonic()
    response = _create(app.test_client())
    assert response.status_code == 504
    assert _error_code(response) == "upstream_timeout"
    assert time.monotonic() - started < 2


def test_slow_drip_is_cut_off_at_the_bound(make_app, chatkit_config, chatkit_standin):
    app = make_app(chatkit_config, CHATKIT_CONNECT_TIMEOUT="0.2", CHATKIT_READ_TIMEOUT="0.3")
    chatkit_standin.inject("drip", seconds=0.2)  # every piece in time, the whole body far too late
    started = time.monotonic()
    response = _create(app.test_client())
    assert _error_code(response) == "upstream_timeout"
    assert time.monotonic() - started < 3


def test_connection_refused_is_502_upstream_unreachable(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_API_BASE=f"http://127.0.0.1:{free_port()}", CHATKIT_MAX_RETRIES="1")
    response = _create(app.test_client())
    assert response.status_code == 502
    assert _error_code(response) == "upstream_unreachable"


def test_reset_mid_body_is_502_upstream_unreachable_and_not_retried(browser, chatkit_standin):
    chatkit_standin.inject("reset")
    response = _create(browser)
    assert response.status_code == 502
    assert _error_code(response) == "upstream_unreachable"
    assert len(chatkit_standin.requests_to(SESSIONS)) == 1


def test_html_with_200_is_502_upstream_invalid_response(browser, chatkit_standin):
    chatkit_standin.inject("html")
    response = _create(browser)
    assert response.status_code == 502
    assert _error_code(response) == "upstream_invalid_response"


def test_session_without_client_secret_is_502_upstream_invalid_response(browser, chatkit_standin):
    chatkit_standin.inject("json", body={"id": "cksess_1", "object": "chatkit.session", "expires_at": 1})
    response = _create(browser)
    assert _error_code(response) == "upstream_invalid_response"


# Retries


def test_503_burst_is_retried_until_success_counting_hits(browser, chatkit_standin):
    chatkit_standin.inject("status", status=503, times=2)
    started = time.monotonic()
    response = _create(browser)
    assert response.status_code == 200
    assert len(chatkit_standin.requests_to(SESSIONS)) == 3
    assert time.monotonic() - started < 2


def test_retries_stop_at_max_retries(make_app, chatkit_config, chatkit_standin):
    app = make_app(chatkit_config, CHATKIT_MAX_RETRIES="1")
    chatkit_standin.inject("status", status=502, times=10)
    _create(app.test_client())
    assert len(chatkit_standin.requests_to(SESSIONS)) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
def test_other_statuses_are_not_retried(browser, chatkit_standin, status):
    chatkit_standin.inject("status", status=status, times=10)
    _create(browser)
    assert len(chatkit_standin.requests_to(SESSIONS)) == 1


def test_retry_after_is_honoured(browser, chatkit_standin):
    chatkit_standin.inject("status", status=503, retry_after="0.5")
    started = time.monotonic()
    response = _create(browser)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.5


def test_retry_after_beyond_the_budget_stops_retrying_at_once(browser, chatkit_standin):
    chatkit_standin.inject("status", status=503, retry_after="120", times=10)
    started = time.monotonic()
    response = _create(browser)
    assert _error_code(response) == "upstream_error"
    assert len(chatkit_standin.requests_to(SESSIONS)) == 1
    assert time.monotonic() - started < 1


def test_the_key_is_never_logged(make_app, chatkit_config, chatkit_standin, caplog, capfd):
    app = make_app(chatkit_config, LOG_LEVEL="DEBUG")
    browser = app.test_client()
    caplog.set_level(logging.DEBUG)
    for fault in ("html", "reset"):
        chatkit_standin.inject(fault)
        _create(browser)
    chatkit_standin.inject("status", status=503, times=10)
    _create(browser)
    chatkit_standin.inject("status", status=401, message=f"bad key {chatkit_standin.api_key}")
    _create(browser)
    captured = capfd.readouterr()
    assert chatkit_standin.api_key not in caplog.text
    assert chatkit_standin.api_key not in captured.err + captured.out


class _RecordingUpstream(ThreadingHTTPServer):
    """Answers every request with a valid session and a Set-Cookie, and keeps each request line and Cookie header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.seen.append((self.requestline, self.headers.get("Cookie")))
                body = json.dumps(
                    {"id": "cksess_1", "client_secret": "ek_1", "expires_at": 2_000_000_000, "workflow": {"id": "wf"}}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Set-Cookie", "__cf_bm=edge-cookie; Path=/")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def recording_upstream():
    server = _RecordingUpstream()
    yield server
    server.shutdown()
    server.server_close()


def test_a_cookie_set_by_the_upstream_is_not_sent_back_on_later_calls(recording_upstream):
    # One client serves every user: a cookie from one call (an edge proxy's, say) must not ride along on the next.
    base = f"http://127.0.0.1:{recording_upstream.server_address[1]}"
    client = HostedChatKit(
        Settings.from_env(
            {"CHATKIT_ENV": "test", "OPENAI_API_KEY": "sk-x", "CHATKIT_WORKFLOW_ID": "wf", "CHATKIT_API_BASE": base}
        )
    )
    client.create_session("alice")
    client.create_session("bob")
    assert [cookie for _, cookie in recording_upstream.seen] == [None, None]


def test_the_environments_proxy_is_used_for_the_upstream(recording_upstream, monkeypatch):
    # The proxy settings are read once, at start; the API host is never resolved here: the proxy is.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{recording_upstream.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    base = "http://chatkit-api.invalid"
    client = HostedChatKit(
        Settings.from_env(
            {"CHATKIT_ENV": "test", "OPENAI_API_KEY": "sk-x", "CHATKIT_WORKFLOW_ID": "wf", "CHATKIT_API_BASE": base}
        )
    )
    assert client.create_session("alice").client_secret == "ek_1"
    assert recording_upstream.seen[0][0] == f"POST {base}/v1/chatkit/sessions HTTP/1.1"
