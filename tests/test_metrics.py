"""`GET /metrics`: off by default, behind the admin token or loopback, and counting what operators watch."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from tests.selfhosted_support import chatkit_post, events_of, new_message, selfhosted_config
from tests.servers import gunicorn

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the text format (labels in any order), or None when it is absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric == name and found == labels:
            return float(value)
    return None


def scrape(client, **kwargs) -> str:
    answer = client.get("/metrics", environ_base=LOOPBACK, **kwargs)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return answer.get_data(as_text=True)


def test_metrics_do_not_exist_unless_enabled(make_app):
    client = make_app().test_client()
    assert client.get("/metrics", environ_base=LOOPBACK).status_code == 404


def test_answers_are_counted_per_route_method_and_status_with_their_latency(make_app):
    client = make_app(CHATKIT_METRICS="on").test_client()
    client.get("/health")
    client.get("/health")
    client.get("/no-such-page")
    text = scrape(client)
    assert sample(text, "chatkit_http_requests_total", route="/health", method="GET", status="200") == 2
    # Unknown paths share one label value: a scanner cannot grow the series without bound.
    assert sample(text, "chatkit_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert sample(text, "chatkit_http_request_duration_seconds_count", route="/health", method="GET") == 2


def test_with_an_admin_token_metrics_need_it(make_app):
    client = make_app(CHATKIT_METRICS="on", CHATKIT_ADMIN_TOKEN="metrics-admin-token").test_client()
    missing = client.get("/metrics", environ_base=LOOPBACK)
    assert missing.status_code == 401
    assert missing.get_json()["error"]["code"] == "unauthorized"
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"}, environ_base=LOOPBACK)
    assert wrong.status_code == 401
    # With the token, from any address.
    right = client.get(
        "/metrics", headers={"Authorization": "Bearer metrics-admin-token"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert right.status_code == 200
    assert "chatkit_http_requests_total" in right.get_data(as_text=True)


@pytest.mark.parametrize(
    ("address", "headers"),
    [("10.1.2.3", {}), ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}), ("127.0.0.1", {"Forwarded": "for=1.2.3.4"})],
    ids=["remote", "forwarded-for", "forwarded"],
)
def test_without_an_admin_token_only_a_direct_loopback_client_is_answered(make_app, address, headers):
    client = make_app(CHATKIT_METRICS="on", TRUSTED_PROXY_HOPS="1").test_client()
    answer = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "forbidden"
    assert client.get("/metrics", environ_base=LOOPBACK).status_code == 200


def test_rate_limit_refusals_are_counted_per_route(make_app):
    client = make_app(CHATKIT_METRICS="on", CHATKIT_ANALYTICS_RATE_LIMIT="1/minute").test_client()
    event = {"thread_id": "cthr_1", "event": "log"}
    assert client.post("/api/analytics/message", json=event).status_code in (200, 201, 202)
    assert client.post("/api/analytics/message", json=event).status_code == 429
    text = scrape(client)
    assert sample(text, "chatkit_rate_limit_refusals_total", route="/api/analytics/message") == 1


def test_spool_depth_is_read_when_scraped(make_app, tmp_path):
    spool = tmp_path / "spool.jsonl"
    client = make_app(CHATKIT_METRICS="on", CHATKIT_ANALYTICS_SPOOL_PATH=str(spool)).test_client()
    assert sample(scrape(client), "chatkit_analytics_spool_depth") == 0
    spool.write_text('["analytics_events", {}]\n' * 3)
    (tmp_path / "spool.jsonl.replaying-1").write_text('["analytics_events", {}]\n' * 2)
    assert sample(scrape(client), "chatkit_analytics_spool_depth") == 5


def test_an_open_stream_is_counted_until_it_closes(make_app, responses_standin):
    client = make_app({**selfhosted_config(responses_standin), "CHATKIT_METRICS": "on"}).test_client()
    answer = chatkit_post(client, "threads.create", {"input": new_message("hi")}, buffered=False)
    assert answer.status_code == 200
    assert sample(scrape(client), "chatkit_open_streams") == 1
    answer.get_data()
    answer.close()
    assert sample(scrape(client), "chatkit_open_streams") == 0


def test_model_time_to_first_token_and_tokens_are_counted(make_app, responses_standin):
    client = make_app({**selfhosted_config(responses_standin), "CHATKIT_METRICS": "on"}).test_client()
    responses_standin.script_text("one two three", deltas=3)
    answer = chatkit_post(client, "threads.create", {"input": new_message("four five")})
    assert any(e["type"] == "thread.item.done" for e in events_of(answer))
    text = scrape(client)
    assert sample(text, "chatkit_model_time_to_first_token_seconds_count") == 1
    assert sample(text, "chatkit_model_tokens_total", direction="out") == 3  # the stand-in counts deltas
    assert sample(text, "chatkit_model_tokens_total", direction="in") > 0


def test_model_errors_are_counted_by_kind(make_app, responses_standin):
    client = make_app({**selfhosted_config(responses_standin), "CHATKIT_METRICS": "on"}).test_client()
    responses_standin.inject("status", status=429)
    chatkit_post(client, "threads.create", {"input": new_message("hi")})
    responses_standin.inject("status", status=500)
    chatkit_post(client, "threads.create", {"input": new_message("hi")})
    text = scrape(client)
    assert sample(text, "chatkit_model_errors_total", kind="rate_limited") == 1
    assert sample(text, "chatkit_model_errors_total", kind="status") == 1


@pytest.mark.slow
def test_every_gunicorn_worker_counts_in_one_scrape(tmp_path):
    env = {
        "SECRET_KEY": "metrics-test-secret-key-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
        "OPENAI_API_KEY": "sk-test",
        "CHATKIT_WORKFLOW_ID": "wf_test",
        "CHATKIT_METRICS": "on",
        "WEB_CONCURRENCY": "2",
    }
    with gunicorn(env, tmp_path / "gunicorn.log") as url:
        folder = Path(re.search(r"workers write their samples to (\S+?)\"", (tmp_path / "gunicorn.log").read_text())[1])
        # Each worker's live gauge file: both workers write to the shared folder.
        assert len(list(folder.glob("gauge_livesum_*.db"))) == 2
        for _ in range(40):
            urllib.request.urlopen(url + "/health", timeout=5).close()
        with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
    assert sample(text, "chatkit_http_requests_total", route="/health", method="GET", status="200") >= 40
    assert sample(text, "chatkit_open_streams") == 0
    assert not folder.exists()  # the folder this start made is removed when gunicorn exits
