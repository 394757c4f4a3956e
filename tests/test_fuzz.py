"""schemathesis fuzzes every documented operation in-process (WSGI), against the loopback ChatKit stand-in.

Seeded (derandomized), so CI sees the same cases on every run. Positive and negative cases; every
response must match the document, no 5xx but the documented upstream ones, every error body the contract.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from chatkit_backend import create_app
from chatkit_backend.config import Settings
from chatkit_backend.openapi.document import build_document
from tests.chatkit_standin import ChatKitStandin
from tests.responses_standin import ResponsesStandin

MAX_EXAMPLES = 150
# The upstream's own failures, documented per operation; the stand-in is healthy, so none is expected.
UPSTREAM_STATUSES = {502, 503, 504}
ERROR_KEYS = {"code", "message", "request_id"}
# Cases sent, by status; printed at the end of the module (pytest -s) for the hardening note.
CASES_RUN: dict[int, int] = {}


@pytest.fixture(scope="module")
def fuzz_standin() -> Iterator[ChatKitStandin]:
    # Recording off: thousands of cases would otherwise keep every request in memory.
    with ChatKitStandin(record=False) as standin:
        standin.add_thread("anon_fuzz", title="a thread")
        yield standin


@pytest.fixture(scope="module")
def fuzz_app(fuzz_standin: ChatKitStandin, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        {
            "CHATKIT_ENV": "test",
            "SECRET_KEY": "fuzz-secret-key",
            "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            "CHATKIT_API_BASE": fuzz_standin.url,
            "OPENAI_API_KEY": fuzz_standin.api_key,
            "CHATKIT_WORKFLOW_ID": fuzz_standin.workflow_id,
            "CHATKIT_ALLOWED_STATE_VARIABLES": ALLOWED_STATE_VARIABLES,
            "CHATKIT_ADMIN_TOKEN": ADMIN_TOKEN,
            "CHATKIT_EXAMPLE_PAGE": "true",
            "CHATKIT_ANALYTICS_SPOOL_PATH": str(workdir / "spool.jsonl"),
            "CHATKIT_CONNECT_TIMEOUT": "1",
            "CHATKIT_READ_TIMEOUT": "2",
            # The fuzzer is one client sending thousands of requests: limits would answer most with 429.
            "CHATKIT_SESSION_RATE_LIMIT": "1000000/minute",
            "CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
            "CHATKIT_THREADS_RATE_LIMIT": "1000000/minute",
            "CHATKIT_ADMIN_AUTH_FAILURE_LIMIT": "1000000/minute",
            "RATELIMIT_KEY_PREFIX": "fuzz",
        }
    )
    yield app
    print(f"\nfuzz cases run: {sum(CASES_RUN.values())}, by status: {dict(sorted(CASES_RUN.items()))}")
    app.extensions["chatkit_db"].engine.dispose()
    app.extensions["chatkit_upstream"].http.close()


@pytest.fixture(scope="module")
def fuzz_selfhosted_app(tmp_path_factory):
    """The same service in self-hosted mode, for POST /api/chatkit (the hosted app answers it 503)."""
    workdir = tmp_path_factory.mktemp("fuzz-selfhosted")
    with ResponsesStandin(record=False) as standin:
        app = create_app(
            {
                "CHATKIT_ENV": "test",
                "SECRET_KEY": "fuzz-secret-key",
                "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
                "LOG_LEVEL": "WARNING",
                "CHATKIT_MODE": "self_hosted",
                "OPENAI_API_KEY": standin.api_key,
                "OPENAI_BASE_URL": standin.base_url,
                "CHATKIT_MODEL_MAX_RETRIES": "0",
                "CHATKIT_MESSAGE_RATE_LIMIT": "1000000/minute",
                "CHATKIT_MESSAGE_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
                "CHATKIT_READ_RATE_LIMIT": "1000000/minute",
                "CHATKIT_READ_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
                "RATELIMIT_KEY_PREFIX": "fuzz-selfhosted",
            }
        )
        yield app
        app.extensions["chatkit_selfhosted"].close()
        app.extensions["chatkit_db"].engine.dispose()


ALLOWED_STATE_VARIABLES = "plan,locale"
ADMIN_TOKEN = "fuzz-admin-token-0123456789"
# Browser pages answer some errors with an HTML page (documented so), not the JSON contract.
HTML_PAGES = ("/admin", "/admin/login", "/admin/logout")
# Loaded at import so that each operation is its own test item (schemathesis's lazy fixture loader
# does not work with pytest 9); the app the cases run against is the module fixture below, and
# test_fuzzed_document_is_what_the_app_serves keeps the two the same.
DOCUMENT = build_document(
    Settings.from_env(
        {
            "CHATKIT_ENV": "test",
            "CHATKIT_ALLOWED_STATE_VARIABLES": ALLOWED_STATE_VARIABLES,
            "CHATKIT_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
)
# 413 is a right answer both ways: an event or batch over its byte or count limit is refused with 413
# (negative cases), and schema-valid fields can together exceed the event's byte limit, which a schema
# cannot state (positive cases; the document says so on each analytics route).
# The document excludes NUL from every string and key, nested ones too (JsonValue is recursive), but the
# generator stops following a recursive schema a few levels down and then puts NUL in keys there: so
# no NUL is generated (tests/test_openapi.py checks the patterns themselves).
CONFIG = schemathesis.config.SchemathesisConfig.from_str(
    """
[generation]
allow-x00 = false
codec = "utf-8"
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
"""
)
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)


def _security_headers(response) -> None:
    """Every answer, success or error, carries nosniff and a Referrer-Policy; HTML pages a restrictive CSP."""
    headers = {k.lower(): v[0] for k, v in response.headers.items()}
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert headers.get("referrer-policy"), headers
    if headers.get("content-type", "").startswith("text/html"):
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp, csp
        assert "unsafe-inline" not in csp, csp
        assert "unsafe-eval" not in csp, csp


def _whitespace_only(body) -> bool:
    return isinstance(body, bytes | str) and not (body.encode() if isinstance(body, str) else body).strip()


def _error_contract(response, path: str) -> None:
    """Every answer of 400 or more is the error contract, documented or not (browser pages may answer HTML)."""
    if response.status_code < 400:
        return
    if path in HTML_PAGES and response.status_code in (401, 403):
        return
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert ERROR_KEYS <= set(body["error"]) <= {*ERROR_KEYS, "details"}, body
    assert isinstance(body["error"]["code"], str), body
    assert body["error"]["message"], body


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_holds_under_fuzzing(case, request):
    # ChatKit's protocol and its uploads are served by the self-hosted app (the hosted one answers them 503).
    chatkit_protocol = case.operation.path == "/api/chatkit" or case.operation.path.startswith("/api/chatkit/attach")
    app = request.getfixturevalue("fuzz_selfhosted_app" if chatkit_protocol else "fuzz_app")
    # Checks that send requests of their own (ignored_auth: the admin API without its token) need the app too.
    case.operation.schema.app = app
    excluded = [negative_data_rejection]
    if case.operation.path == "/api/admin/analytics/summary":
        # since < until and the bucket count are cross-field rules a schema cannot state: a schema-valid
        # pair may rightly be refused. Everything else (no 5xx, conformance, error contract) still holds.
        excluded.append(positive_data_acceptance)
    if chatkit_protocol:
        # The document states ChatKit's envelope; each operation's params are checked against the package's own
        # models (a schema-valid envelope may rightly be a 400), and dictation and attachments are 501 here.
        excluded += [positive_data_acceptance, not_a_server_error]
    # The admin token on every case: the admin API is fuzzed signed in; `ignored_auth` checks it without.
    response = case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, excluded_checks=excluded
    )
    if not _whitespace_only(case.body):
        # A blank body means "no body" to the service (get_json_body): not a malformed one.
        case.validate_response(response, checks=[negative_data_rejection])
    CASES_RUN[response.status_code] = CASES_RUN.get(response.status_code, 0) + 1
    allowed = {501} if chatkit_protocol else UPSTREAM_STATUSES
    assert response.status_code < 500 or response.status_code in allowed, response.text
    _error_contract(response, case.operation.path)
    _security_headers(response)


def test_fuzzed_document_is_what_the_app_serves(fuzz_app):
    assert fuzz_app.test_client().get("/openapi.json").get_json() == DOCUMENT
