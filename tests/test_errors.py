"""The one error contract: every non-2xx answer is JSON with a code, a message and the request id."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from flask import Blueprint, Flask

from chatkit_backend.errors import _HTTP_CODES as _HTTP_CODES_BY_STATUS
from chatkit_backend.errors import ERROR_CODES, ApiError, get_json_body, validation_error
from chatkit_backend.openapi.document import build_document
from chatkit_backend.rate_limits import limiter


def assert_contract(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert b"<html" not in response.data.lower()
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


@pytest.fixture
def probe_app(make_app) -> Flask:
    """The real app plus a blueprint whose routes raise each kind of error the contract covers."""
    app = make_app()
    probe = Blueprint("probe", __name__)

    @probe.post("/probe/json")
    def echo_json():
        return {"got": get_json_body(required=True)}

    @probe.get("/probe/validation")
    def bad_field():
        raise validation_error([{"field": "thread_id", "message": "must be a string"}])

    @probe.get("/probe/unauthorized")
    def unauthorized():
        raise ApiError("unauthorized", "A bearer token is required.", 401)

    @probe.get("/probe/forbidden")
    def forbidden():
        raise ApiError("forbidden", "Not yours.", 403)

    @probe.get("/probe/crash")
    def crash():
        raise RuntimeError("boom with sk-live-secret-value inside")

    @probe.get("/probe/limited")
    @limiter.limit("1/minute")
    def limited():
        return {"ok": True}

    app.register_blueprint(probe)
    return app


@pytest.fixture
def probe(probe_app):
    return probe_app.test_client()


def test_invalid_json_is_400_invalid_json(probe):
    response = probe.post("/probe/json", data=b"{not json", content_type="application/json")
    assert_contract(response, 400, "invalid_json")


def test_non_utf8_body_is_400_invalid_json(probe):
    response = probe.post("/probe/json", data=b'{"a": "\xff\xfe"}', content_type="application/json")
    assert_contract(response, 400, "invalid_json")


def test_deeply_nested_json_is_400_invalid_json(probe):
    response = probe.post("/probe/json", data=b"[" * 100000 + b"]" * 100000, content_type="application/json")
    assert_contract(response, 400, "invalid_json")


def test_validation_error_names_the_field(probe):
    error = assert_contract(probe.get("/probe/validation"), 400, "validation_error")
    assert error["details"] == [{"field": "thread_id", "message": "must be a string"}]


def test_unauthorized_is_401(probe):
    assert_contract(probe.get("/probe/unauthorized"), 401, "unauthorized")


def test_forbidden_is_403(probe):
    assert_contract(probe.get("/probe/forbidden"), 403, "forbidden")


def test_unknown_route_is_404_not_found(probe):
    assert_contract(probe.get("/no/such/route"), 404, "not_found")


def test_wrong_method_is_405_with_allow_header(probe):
    response = probe.delete("/health")
    assert_contract(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_oversized_body_is_413_payload_too_large(probe_app, probe):
    size = probe_app.config["MAX_CONTENT_LENGTH"] + 1
    response = probe.post("/probe/json", data=b"x" * size, content_type="application/json")
    assert_contract(response, 413, "payload_too_large")


def test_wrong_content_type_is_415_unsupported_media_type(probe):
    response = probe.post("/probe/json", data=b'{"a": 1}', content_type="text/plain")
    assert_contract(response, 415, "unsupported_media_type")


def test_rate_limit_is_429_with_retry_after(probe):
    assert probe.get("/probe/limited").status_code == 200
    response = probe.get("/probe/limited")
    assert_contract(response, 429, "rate_limited")
    # Seconds (not a timestamp or a date), within the limit's window.
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_unhandled_exception_is_500_without_traceback_or_secret(probe, caplog):
    with caplog.at_level(logging.ERROR):
        response = probe.get("/probe/crash")
    error = assert_contract(response, 500, "internal_error")
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert "sk-live-secret-value" not in body
    assert "boom" not in error["message"]
    assert any(record.exc_info for record in caplog.records), "the server log keeps the traceback"


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e999}'])
def test_non_finite_numbers_are_400_invalid_json(probe, body):
    # Not JSON (RFC 8259), and refused downstream: requests will not send NaN to ChatKit, jsonb will not store it.
    response = probe.post("/probe/json", data=body, content_type="application/json")
    assert_contract(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [b'{"a": "\\ud800"}', b'{"\\udfff": 1}', b'{"a": "x\\u0000y"}', b'{"a\\u0000": 1}', b'["\\u0000"]'],
    ids=["lone-surrogate", "lone-surrogate-key", "nul", "nul-key", "nul-in-array"],
)
def test_unstorable_strings_are_400_invalid_json(probe, body):
    # A lone surrogate cannot be encoded to UTF-8 and PostgreSQL text cannot hold NUL: once accepted,
    # such an event could never be stored (it would sit in the spool and block it).
    response = probe.post("/probe/json", data=body, content_type="application/json")
    assert_contract(response, 400, "invalid_json")


def test_a_surrogate_pair_is_one_character_and_fine(probe):
    response = probe.post("/probe/json", data=b'{"a": "\\ud83d\\ude00"}', content_type="application/json")
    assert response.status_code == 200


def test_nesting_deeper_than_the_limit_is_400_invalid_json(probe):
    from chatkit_backend.errors import MAX_JSON_DEPTH

    deep = b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1)
    assert_contract(probe.post("/probe/json", data=deep, content_type="application/json"), 400, "invalid_json")
    fine = b'{"a": ' * (MAX_JSON_DEPTH - 1) + b"1" + b"}" * (MAX_JSON_DEPTH - 1)
    assert probe.post("/probe/json", data=fine, content_type="application/json").status_code == 200


def test_utf16_json_is_400_invalid_json(probe):
    response = probe.post("/probe/json", data='{"a": 1}'.encode("utf-16"), content_type="application/json")
    assert_contract(response, 400, "invalid_json")


# Each code once: errors.ERROR_CODES lists them; the raises, README's table and the OpenAPI document follow it.

PACKAGE = Path(__file__).resolve().parent.parent / "chatkit_backend"


def _codes_raised_in_the_package() -> dict[str, set[int]]:
    """Code -> statuses of every ApiError built with a literal code (ApiError, UpstreamError, subclasses)."""
    raised: dict[str, set[int]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            func = node.func
            is_error = isinstance(func, ast.Name) and func.id in ("ApiError", "UpstreamError")
            is_subclass = isinstance(func, ast.Attribute) and func.attr == "__init__" and len(node.args) == 3
            if not (is_error or is_subclass) or not isinstance(node.args[0].value, str):
                continue
            status = node.args[2] if len(node.args) > 2 else ast.Constant(400)
            raised.setdefault(node.args[0].value, set()).add(status.value)
    for code, _ in _HTTP_CODES_BY_STATUS.values():
        raised.setdefault(code, set())
    for status, (code, _) in _HTTP_CODES_BY_STATUS.items():
        raised[code].add(status)
    return raised


def test_every_code_the_package_raises_is_registered_with_its_status():
    raised = _codes_raised_in_the_package()
    assert len(raised) > 20
    assert {code: {ERROR_CODES.get(code)} for code in raised} == raised
    assert set(ERROR_CODES) - set(raised) == {"http_error"}  # werkzeug's fallback for any other status


def test_every_code_is_in_the_readme_error_table():
    readme = (PACKAGE.parent / "README.md").read_text()
    table = readme.split("## Error contract", 1)[1].split("\n## ", 1)[0]
    assert sorted(code for code in ERROR_CODES if f"`{code}`" not in table) == []


def test_every_code_is_described_in_the_openapi_document(make_app):
    app = make_app(CHATKIT_ADMIN_TOKEN="a" * 40)
    document = build_document(app.config["SETTINGS"])

    def descriptions(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["description"]] if isinstance(node.get("description"), str) else []
            return found + [text for value in node.values() for text in descriptions(value)]
        if isinstance(node, list):
            return [text for value in node for text in descriptions(value)]
        return []

    text = "\n".join(descriptions(document))
    assert sorted(code for code in ERROR_CODES if f"`{code}`" not in text) == []
    error_code = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert error_code == {"enum": sorted(ERROR_CODES)}
