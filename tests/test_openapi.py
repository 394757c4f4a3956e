"""The OpenAPI document: valid OpenAPI 3.1, and in step with the routes the app registers."""

from __future__ import annotations

import re

import jsonschema
import pytest
import schemathesis

from chatkit_backend.openapi.document import build_document

# Methods Flask adds by itself; they are not operations of their own.
_IMPLICIT = {"HEAD", "OPTIONS"}


def _registered(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes |= {(path, method) for method in rule.methods - _IMPLICIT}
    return routes


def _documented(document) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize("metrics", [None, "on"], ids=["without-metrics", "with-metrics"])
@pytest.mark.parametrize("admin_token", [None, "admin-token-for-the-document"], ids=["without-admin", "with-admin"])
def test_every_registered_route_is_documented_and_nothing_else(make_app, admin_token, metrics):
    # The admin routes exist only with CHATKIT_ADMIN_TOKEN, /metrics only with CHATKIT_METRICS; the document follows.
    settings = {"CHATKIT_ADMIN_TOKEN": admin_token, "CHATKIT_METRICS": metrics}
    app = make_app(**{name: value for name, value in settings.items() if value})
    document = app.test_client().get("/openapi.json").get_json()
    registered, documented = _registered(app), _documented(document)
    assert registered - documented == set(), "registered but missing from chatkit_backend/openapi/document.py"
    assert documented - registered == set(), "documented but no longer registered"


@pytest.mark.parametrize("admin_token", [None, "admin-token-for-the-document"], ids=["without-admin", "with-admin"])
def test_the_document_is_valid_openapi_3_1(make_app, admin_token):
    app = make_app(CHATKIT_ADMIN_TOKEN=admin_token, CHATKIT_METRICS="on") if admin_token else make_app()
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.validate()
    assert schema.raw_schema["openapi"] == "3.1.0"


# Answers for browsers, not API clients: an HTML page (and /ready's own 503 body).
HTML_OR_OWN_ERRORS = {("/ready", "503"), ("/admin/login", "401"), ("/admin/logout", "403")}


def test_every_operation_documents_the_error_contract_for_its_errors(make_app):
    app = make_app(CHATKIT_ADMIN_TOKEN="admin-token-for-the-document", CHATKIT_METRICS="on")
    document = build_document(app.config["SETTINGS"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and (path, status) not in HTML_OR_OWN_ERRORS:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_allowed_state_variables_come_from_settings(make_app):
    app = make_app(CHATKIT_ALLOWED_STATE_VARIABLES="plan,locale")
    document = app.test_client().get("/openapi.json").get_json()
    create = document["paths"]["/api/chatkit/session"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["state_variables"]["propertyNames"] == {"enum": ["plan", "locale"]}


def test_openapi_json_is_never_rate_limited(make_app):
    app = make_app(CHATKIT_SESSION_RATE_LIMIT="1/minute", CHATKIT_THREADS_RATE_LIMIT="1/minute")
    client = app.test_client()
    assert all(client.get("/openapi.json").status_code == 200 for _ in range(30))


@pytest.mark.parametrize("refused", ["nul\x00here", "lone \ud800 surrogate"])
def test_strings_the_service_refuses_are_outside_the_schemas(make_app, refused):
    document = make_app().test_client().get("/openapi.json").get_json()
    event = {"$ref": "#/components/schemas/Event", "components": document["components"]}
    jsonschema.validate({"name": "fine", "data": {"deep": [{"ok": "yes"}]}}, event)
    for bad in ({"name": refused}, {"data": {"deep": [{"key": refused}]}}, {"data": {refused: 1}}, {refused: 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, event)


def test_admin_summary_times_are_declared_as_dates_or_date_times(make_app):
    app = make_app(CHATKIT_ADMIN_TOKEN="admin-token-for-the-document")
    document = app.test_client().get("/openapi.json").get_json()
    parameters = document["paths"]["/api/admin/analytics/summary"]["get"]["parameters"]
    formats = {p["name"]: {f.get("format") for f in p["schema"].get("anyOf", [])} for p in parameters}
    assert formats["since"] == formats["until"] == {"date", "date-time", None}  # None: empty, the default


def test_each_analytics_route_documents_its_own_413(make_app):
    paths = make_app().test_client().get("/openapi.json").get_json()["paths"]
    assert "batch_too_large" in paths["/api/analytics/events"]["post"]["responses"]["413"]["description"]
    for path in ("/api/analytics/message", "/api/analytics/thread-change", "/api/errors"):
        description = paths[path]["post"]["responses"]["413"]["description"]
        assert "event_too_large" in description
        assert "batch_too_large" not in description
    assert "too_large`" not in paths["/api/chatkit/session"]["post"]["responses"]["413"]["description"].replace(
        "payload_too_large`", ""
    )
