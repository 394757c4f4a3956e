"""Request ids on every response and every log line; logs are JSON and carry no secrets."""

from __future__ import annotations

import json
import logging

import pytest

from chatkit_backend.request_log import RequestContextFilter


@pytest.fixture
def json_lines(capsys):
    """The JSON log lines written to stderr so far, parsed."""

    def read() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    return read


def test_a_sane_incoming_request_id_is_kept(client):
    response = client.get("/health", headers={"X-Request-ID": "abc-123.trace:7"})
    assert response.headers["X-Request-ID"] == "abc-123.trace:7"


@pytest.mark.parametrize("bad", ["a" * 129, "has space", "tab\there", "<script>", "é", ""])
def test_an_unsafe_request_id_is_replaced(client, bad):
    response = client.get("/health", headers={"X-Request-ID": bad})
    generated = response.headers["X-Request-ID"]
    assert generated != bad
    assert len(generated) == 32
    assert generated.isalnum()


def test_each_request_logs_one_json_access_line(client, json_lines):
    json_lines()
    client.get("/health", headers={"X-Request-ID": "req-1"})
    access = [line for line in json_lines() if line.get("logger") == "chatkit_backend.access"]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "GET"
    assert line["path"] == "/health"
    assert line["status"] == 200
    assert line["request_id"] == "req-1"
    assert isinstance(line["duration_ms"], float)
    assert "user" in line


def test_access_log_leaves_out_authorization_cookies_and_body(client, json_lines):
    json_lines()
    client.set_cookie("chatkit_uid", "cookie-value-secret")
    client.post(
        "/nope?x=1",
        headers={"Authorization": "Bearer tok-secret-123"},
        json={"password": "body-secret"},
    )
    text = json.dumps(json_lines())
    for secret in ("tok-secret-123", "cookie-value-secret", "body-secret"):
        assert secret not in text


def test_log_lines_outside_requests_have_a_null_request_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert RequestContextFilter().filter(record) is True
    assert record.request_id is None
