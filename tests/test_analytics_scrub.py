"""Scrubbing: secrets and personal data never reach storage; fingerprints group the same error."""

from __future__ import annotations

import time

import pytest

from chatkit_backend.analytics.error_groups import fingerprint, normalise_message, top_frame
from chatkit_backend.analytics.scrub import MAX_SCRUB_CHARS, scrub, scrub_id, scrub_text

SECRETS = {
    "bearer token": ("Authorization: Bearer abc.DEF_123-xyz", "abc.DEF_123-xyz"),
    "sk- key": ("key=sk-proj-A1b2C3d4E5f6G7h8 failed", "sk-proj-A1b2C3d4E5f6G7h8"),
    "ek_ key": ("client secret ek_68f1a2b3c4d5e6f7_secret rejected", "ek_68f1a2b3c4d5e6f7_secret"),
    "JWT": ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl expired", "eyJhbGciOiJIUzI1NiJ9"),
    "e-mail": ("user jane.doe+test@example.co.uk not found", "jane.doe+test@example.co.uk"),
    "long hex": ("session 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c7d65"),
    "base64 token": ("cookie dGhpc0lzQVNlY3JldFRva2VuMTIzNDU2Nzg5MA== leaked", "dGhpc0lzQVNlY3JldFRva2VuMTIz"),
    "query value": ("GET https://app.example/cb?code=abc123&state=xyz failed", "abc123"),
    "password in free text": ("login failed with password=hunter2 for bob", "hunter2"),
    "client secret in free text": ('config {"client_secret": "shh-not-telling"} rejected', "shh-not-telling"),
    "authorization in free text": ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    "fragment token": ("redirected to https://app.example/cb#access_token=ya29.a0AfH6&expires_in=3599", "ya29.a0AfH6"),
    "AWS access key id": ("aws key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
}


@pytest.mark.parametrize("name", SECRETS)
def test_scrub_text_removes_each_kind_of_secret(name):
    text, secret = SECRETS[name]
    assert secret not in scrub_text(text)


def test_scrub_keeps_ordinary_text():
    text = "TypeError: Cannot read properties of undefined (reading 'map') at ChatPanel.tsx:42"
    assert scrub_text(text) == text


def test_scrub_keeps_query_names_but_not_values():
    assert scrub_text("https://a.example/p?user=42&page=3") == "https://a.example/p?user=[redacted]&page=[redacted]"


def test_scrub_drops_values_under_secret_keys_and_recurses():
    value = {"password": "hunter2", "nested": [{"apiKey": "x"}, "mail bob@example.com"], "n": 3}
    assert scrub(value) == {"password": "[redacted]", "nested": [{"apiKey": "[redacted]"}, "mail [email]"], "n": 3}


def test_fingerprint_ignores_numbers_quotes_and_positions():
    first = fingerprint("Request 17 failed for 'abc'", "Error\n    at load (https://a.example/app.js?v=1:10:5)")
    second = fingerprint("Request 99 failed for 'xyz'", "Error\n    at load (https://a.example/app.js?v=2:11:7)")
    assert first == second


def test_fingerprint_differs_by_top_frame():
    assert fingerprint("Boom", "Error\n at a (x.js:1:1)") != fingerprint("Boom", "Error\n at b (x.js:1:1)")


def test_top_frame_reads_firefox_and_chrome_frames():
    assert top_frame("Error: x\n    at render (main.js:3:4)") == "at render (main.js)"
    assert top_frame("render@https://a.example/main.js:3:4\n") == "render@https://a.example/main.js"


def test_scrub_keeps_request_ids_under_correlation_keys_only():
    request_id = "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7"
    scrubbed = scrub({"requestId": request_id, "note": request_id, "request_id": "sk-live-0123456789abcdef"})
    assert scrubbed["requestId"] == request_id
    assert scrubbed["note"] == "[redacted]"
    assert scrubbed["request_id"] == "[redacted]"


def test_scrub_id_keeps_chatkit_ids_and_removes_secrets():
    assert scrub_id("cthr_68f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9") == "cthr_68f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9"
    assert scrub_id("ek_68f1a2b3c4d5e6f7a8b9c0d1") == "[redacted]"
    assert scrub_id("Zp3kQ9vL2mX8nR4tW6yB1cD5fG7hJ0aS-uE_iOq") == "[redacted]"  # a token_urlsafe admin token


def test_scrub_text_cuts_what_it_scans():
    scrubbed = scrub_text("x" * (4 * MAX_SCRUB_CHARS))
    assert len(scrubbed) < MAX_SCRUB_CHARS + 20
    assert scrubbed.endswith("[truncated]")


# Per pattern of scrub.py (and of error_groups.py, which reads the scrubbed stack), inputs that make
# a backtracking pattern rescan a long run from each of its positions.
ADVERSARIAL = {
    "bearer": ["bearer ", "Bearer" + " " * 64],
    "jwt": ["eyJ-", "eyJaaaa.", "eyJ"],
    "key": ["sk-", "ek_", "AKIA", "rk-a"],
    "email": ["-", "a.", "a@", "a@a.", "a@-", "-@", "%+"],
    "assign": ["password", "a_token", "token ", "x_" * 20 + "passwor", "auth:"],
    "query": ["?a", "#a", "&a", "?a=&"],
    "hex": ["a", "0a", "a" * 40 + "_"],
    "token": ["a1-", "a", "1", "a1" * 20 + "."],
    "frame": ["at ", "a@b:1", ":1", "\n at x"],
    "message": ["'", '"', "0x", "1.", "[redacted]"],
}


def _cpu_seconds(text: str) -> float:
    """Least CPU time of three runs of every pattern that reads an error report (least: other load only adds)."""
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        scrub_text(text)
        top_frame(text)
        normalise_message(text)
        best = min(best, time.thread_time() - start)
    return best


@pytest.mark.parametrize("pattern", ADVERSARIAL)
def test_each_pattern_scrubs_its_worst_case_in_linear_time(pattern):
    for unit in ADVERSARIAL[pattern]:
        quarter = _cpu_seconds((unit * MAX_SCRUB_CHARS)[: MAX_SCRUB_CHARS // 4])
        full = _cpu_seconds((unit * MAX_SCRUB_CHARS)[:MAX_SCRUB_CHARS])
        # 4x the input: linear is 4x the time, quadratic 16x; 8x leaves room for noise, 5 ms for the timer.
        assert full < 8 * quarter + 0.005, (unit, quarter, full)
        # Before the fix, 16,000 `-` took 0.35 s here and 65,536 would take ~6 s.
        assert full < 0.25, (unit, full)
