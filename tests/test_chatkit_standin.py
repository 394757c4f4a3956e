"""The ChatKit stand-in answers like the real API (chatkit-api.md), so the other tests can trust it."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.chatkit_standin import DRIP_PIECES, ChatKitStandin
from tests.conftest import free_port

BETA = {"OpenAI-Beta": "chatkit_beta=v1"}


def _post(standin: ChatKitStandin, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    auth = {"Authorization": f"Bearer {standin.api_key}", **BETA}
    return requests.post(
        f"{standin.url}/v1/chatkit/sessions", json=body, headers={**auth, **(headers or {})}, timeout=5
    )


def _session_body(standin: ChatKitStandin) -> dict[str, object]:
    return {"user": "u1", "workflow": {"id": standin.workflow_id}}


def test_create_session_returns_a_full_session_object_and_records_the_request(chatkit_standin):
    response = _post(chatkit_standin, _session_body(chatkit_standin))
    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chatkit.session"
    assert body["id"].startswith("cksess_")
    assert body["client_secret"]
    assert body["status"] == "active"
    assert "expires_after" not in body
    [recorded] = chatkit_standin.requests_to("/v1/chatkit/sessions", "POST")
    assert recorded.body == _session_body(chatkit_standin)
    assert recorded.header("openai-beta") == "chatkit_beta=v1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user": "u1"}, "Missing required parameter: 'workflow'."),
        ({"workflow": {"id": "wf_standin"}}, "Missing required parameter: 'user'."),
        (
            {"user": "u1", "workflow": "wf_standin"},
            "Invalid type for 'workflow': expected an object, but got a string instead.",
        ),
    ],
)
def test_create_session_rejects_invalid_bodies_with_the_real_messages(chatkit_standin, body, message):
    response = _post(chatkit_standin, body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


def test_missing_beta_header_is_400_with_the_real_message(chatkit_standin):
    response = requests.post(
        f"{chatkit_standin.url}/v1/chatkit/sessions",
        json=_session_body(chatkit_standin),
        headers={"Authorization": f"Bearer {chatkit_standin.api_key}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "'OpenAI-Beta' header" in response.json()["error"]["message"]


def test_wrong_key_is_401(chatkit_standin):
    response = _post(chatkit_standin, _session_body(chatkit_standin), {"Authorization": "Bearer sk-wrong"})
    assert response.status_code == 401


def test_unknown_workflow_and_other_project_are_404_workflow_not_found(chatkit_standin):
    unknown = _post(chatkit_standin, {"user": "u1", "workflow": {"id": "wf_other"}})
    chatkit_standin.require_organization("org_a", "proj_a")
    other_project = _post(chatkit_standin, _session_body(chatkit_standin), {"OpenAI-Project": "proj_b"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Workflow with id 'wf_other' not found."
    assert other_project.status_code == 404


def test_cancel_session_marks_it_cancelled_and_unknown_ids_are_404(chatkit_standin):
    session = _post(chatkit_standin, _session_body(chatkit_standin)).json()
    auth = {"Authorization": f"Bearer {chatkit_standin.api_key}", **BETA}
    cancelled = requests.post(
        f"{chatkit_standin.url}/v1/chatkit/sessions/{session['id']}/cancel", headers=auth, timeout=5
    )
    unknown = requests.post(f"{chatkit_standin.url}/v1/chatkit/sessions/cksess_nope/cancel", headers=auth, timeout=5)
    assert cancelled.json()["status"] == "cancelled"
    assert chatkit_standin.session(session["id"])["status"] == "cancelled"
    assert unknown.status_code == 404


def test_threads_list_filters_by_user_pages_and_deletes(chatkit_standin):
    first = chatkit_standin.add_thread("alice", created_at=1)
    second = chatkit_standin.add_thread("alice", created_at=2)
    chatkit_standin.add_thread("bob", created_at=3)
    auth = {"Authorization": f"Bearer {chatkit_standin.api_key}", **BETA}
    base = f"{chatkit_standin.url}/v1/chatkit/threads"
    page = requests.get(base, params={"user": "alice", "limit": 1}, headers=auth, timeout=5).json()
    rest = requests.get(base, params={"user": "alice", "after": page["last_id"]}, headers=auth, timeout=5).json()
    deleted = requests.delete(f"{base}/{first}", headers=auth, timeout=5).json()
    gone = requests.get(f"{base}/{first}", headers=auth, timeout=5)
    assert [t["id"] for t in page["data"]] == [second]
    assert page["has_more"] is True
    assert [t["id"] for t in rest["data"]] == [first]
    assert deleted == {"id": first, "object": "chatkit.thread.deleted", "deleted": True}
    assert gone.status_code == 404


def test_status_fault_burst_then_normal_answers(chatkit_standin):
    chatkit_standin.inject("status", status=503, times=2)
    statuses = [_post(chatkit_standin, _session_body(chatkit_standin)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_rate_limited_fault_carries_retry_after(chatkit_standin):
    chatkit_standin.inject("status", status=429, retry_after="7")
    response = _post(chatkit_standin, _session_body(chatkit_standin))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_html_fault_answers_200_with_html(chatkit_standin):
    chatkit_standin.inject("html")
    response = _post(chatkit_standin, _session_body(chatkit_standin))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html"


def test_hang_fault_outlasts_a_client_timeout(chatkit_standin):
    chatkit_standin.inject("hang", seconds=5)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        _post_with_timeout(chatkit_standin, 0.3)
    assert time.monotonic() - started < 2


def test_reset_fault_breaks_the_connection_mid_body(chatkit_standin):
    chatkit_standin.inject("reset")
    with pytest.raises(requests.exceptions.RequestException):
        _post(chatkit_standin, _session_body(chatkit_standin))


def test_drip_fault_sends_the_body_slowly(chatkit_standin):
    chatkit_standin.inject("drip", seconds=0.02)
    started = time.monotonic()
    response = _post(chatkit_standin, _session_body(chatkit_standin))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.02 * DRIP_PIECES * 0.9


def _post_with_timeout(standin: ChatKitStandin, timeout: float) -> requests.Response:
    auth = {"Authorization": f"Bearer {standin.api_key}", **BETA}
    return requests.post(
        f"{standin.url}/v1/chatkit/sessions", json=_session_body(standin), headers=auth, timeout=timeout
    )


def test_latency_is_served_concurrently():
    """200 concurrent requests at 300 ms latency finish in about one latency, not 200 of them."""
    with ChatKitStandin(latency_ms=300) as standin:
        started = time.monotonic()
        with ThreadPoolExecutor(200) as pool:
            statuses = list(pool.map(lambda _: _post(standin, _session_body(standin)).status_code, range(200)))
        elapsed = time.monotonic() - started
    assert statuses == [200] * 200
    assert elapsed < 3


def test_module_entry_point_serves_on_the_given_port():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.chatkit_standin", "--port", str(port), "--latency-ms", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "chatkit stand-in on" in process.stdout.readline()
        standin_url = f"http://127.0.0.1:{port}/v1/chatkit/threads"
        response = requests.get(standin_url, headers={"Authorization": "Bearer sk-standin-test-key", **BETA}, timeout=5)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
