"""Bad input on every route that reads a body or a path parameter: each answered by the JSON error contract.

The contract's handling of one bad body is unit-tested in tests/test_errors.py; this plays the whole set of
bad inputs against each real route (sessions, analytics, errors), so a route that reads its body in its
own way cannot slip past. Path traversal in thread ids never reaches the upstream.
"""

from __future__ import annotations

import pytest

from tests.test_errors import assert_contract

JSON_ROUTES = [
    "/api/chatkit/session",
    "/api/chatkit/refresh",
    "/api/analytics/message",
    "/api/analytics/thread-change",
    "/api/errors",
    "/api/analytics/events",
]
APP_BODY_LIMIT = 64 * 1024

# name: (body, content type, status, codes)
BAD_BODIES = {
    "oversized": (b"[" + b"1," * APP_BODY_LIMIT + b"1]", "application/json", 413, {"payload_too_large"}),
    "deeply-nested-arrays": (b"[" * 5000 + b"]" * 5000, "application/json", 400, {"invalid_json"}),
    "deeply-nested-objects": (b'{"a":' * 200 + b"1" + b"}" * 200, "application/json", 400, {"invalid_json"}),
    "non-utf8": (b'{"message": "\xff\xfe\xfa"}', "application/json", 400, {"invalid_json"}),
    "utf16": ('{"message": "x"}'.encode("utf-16"), "application/json", 400, {"invalid_json"}),
    "utf8-bom": (b'\xef\xbb\xbf{"message": "x"}', "application/json", 400, {"invalid_json"}),
    "lone-surrogate": (b'{"message": "\\ud800"}', "application/json", 400, {"invalid_json"}),
    "nul-character": (b'{"message": "a\\u0000b"}', "application/json", 400, {"invalid_json"}),
    "nan": (b'{"message": "x", "data": {"v": NaN}}', "application/json", 400, {"invalid_json"}),
    "huge-number": (b'{"message": "x", "data": {"v": 1e999}}', "application/json", 400, {"invalid_json"}),
    "huge-integer": (b'{"message": "x", "id": ' + b"9" * 5000 + b"}", "application/json", 400, {"invalid_json"}),
    "truncated": (b'{"message": "x", "data": {', "application/json", 400, {"invalid_json"}),
    "text-plain": (b'{"message": "x"}', "text/plain", 415, {"unsupported_media_type"}),
    "form-encoded": (b"message=x", "application/x-www-form-urlencoded", 415, {"unsupported_media_type"}),
    "multipart": (b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b", 415, {"unsupported_media_type"}),
    "xml": (b"<message>x</message>", "application/xml", 415, {"unsupported_media_type"}),
}
# Analytics checks its smaller per-event cap first, with its own 413 code.
_ANALYTICS_413 = {"payload_too_large", "event_too_large"}


@pytest.fixture
def limits_app(make_app, chatkit_config, tmp_path):
    return make_app(
        chatkit_config,
        MAX_CONTENT_LENGTH=str(APP_BODY_LIMIT),
        CHATKIT_ANALYTICS_SPOOL_PATH=str(tmp_path / "spool.jsonl"),
        CHATKIT_SESSION_RATE_LIMIT="1000/minute",
    )


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("bad", list(BAD_BODIES))
def test_bad_bodies_get_the_error_contract_on_every_route(limits_app, chatkit_standin, route, bad):
    body, content_type, status, codes = BAD_BODIES[bad]
    response = limits_app.test_client().post(route, data=body, content_type=content_type)
    if status == 413 and route.startswith(("/api/analytics", "/api/errors")):
        codes = _ANALYTICS_413
    assert response.status_code == status, response.get_data()[:300]
    assert_contract(response, status, response.get_json()["error"]["code"])
    assert response.get_json()["error"]["code"] in codes
    # Nothing bad reached ChatKit.
    assert chatkit_standin.requests_to("/v1/chatkit/sessions", "POST") == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/chatkit/threads/..%2F..%2Fsessions",
        "/api/chatkit/threads/%2e%2e%2f%2e%2e%2fsessions",
        "/api/chatkit/threads/..",
        "/api/chatkit/threads/.%2e",
        "/api/chatkit/threads/cthr_1%00",
        "/api/chatkit/threads/cthr_1%0d%0aX-Injected:%201",
        "/api/chatkit/threads/cthr_1%3Fuser%3Dsomeone",
        "/api/chatkit/threads/cthr_1%23frag",
        "/api/chatkit/threads/%E2%80%AEcthr",
        "/api/chatkit/threads/" + "a" * 129,
        "/api/chatkit/threads/../../admin",
        "/api/chatkit/threads/cthr_1/../../sessions",
    ],
)
def test_path_traversal_in_thread_ids_never_reaches_the_upstream(limits_app, chatkit_standin, path):
    response = limits_app.test_client().delete(path)
    assert response.status_code in (400, 404, 405)
    assert_contract(response, response.status_code, response.get_json()["error"]["code"])
    assert chatkit_standin.requests == []


@pytest.mark.parametrize(
    "query",
    [
        "after=../../x",
        "after=a%00b",
        "limit=-1",
        "limit=1e9",
        "limit=%F0%9F%98%80",
        "order=random",
        "after=" + "a" * 200,
    ],
)
def test_bad_thread_paging_is_a_validation_error_and_never_reaches_the_upstream(limits_app, chatkit_standin, query):
    response = limits_app.test_client().get("/api/chatkit/threads?" + query)
    assert_contract(response, 400, "validation_error")
    assert chatkit_standin.requests == []
