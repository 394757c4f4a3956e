"""Scrubbing: secrets and personal data never reach storage; fingerprints group the same error."""

from __future__ import annotations

import pytest

from chatkit_backend.analytics.error_groups import fingerprint, top_frame
from chatkit_backend.analytics.scrub import scrub, scrub_text

SECRETS = {
    "bearer token": ("Authorization: Bearer abc.DEF_123-xyz", "abc.DEF_123-xyz"),
    "sk- key": ("key=sk-proj-A1b2C3d4E5f6G7h8 failed", "sk-proj-A1b2C3d4E5f6G7h8"),
    "ek_ key": ("client secret ek_68f1a2b3c4d5e6f7_secret rejected", "ek_68f1a2b3c4d5e6f7_secret"),
    "JWT": ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl expired", "eyJhbGciOiJIUzI1NiJ9"),
    "e-mail": ("user jane.doe+test@example.co.uk not found", "jane.doe+test@example.co.uk"),
    "long hex": ("session 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c7d65"),
    "base64 token": ("cookie dGhpc0lzQVNlY3JldFRva2VuMTIzNDU2Nzg5MA== leaked", "dGhpc0lzQVNlY3JldFRva2VuMTIz"),
    "query value": ("GET https://app.example/cb?code=abc123&state=xyz failed", "abc123"),
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
