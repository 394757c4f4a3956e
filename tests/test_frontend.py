"""The frontend blueprint: the helper module, the example page and its switch, its CSP."""

from __future__ import annotations

import re

import pytest
from flask import Response

from chatkit_backend.frontend.routes import CHATKIT_SCRIPT_URL


def test_the_helper_module_is_served_as_javascript_in_every_environment(make_app):
    client = make_app(CHATKIT_ENV="production").test_client()
    response = client.get("/static/chatkit-backend.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert b"export function createChatKitBackend" in response.data
    response.close()


def test_the_helper_module_may_be_imported_from_any_origin(client):
    response = client.get("/static/chatkit-backend.js", headers={"Origin": "https://app.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    response.close()


def test_other_static_files_get_no_cors_header(make_app):
    client = make_app(CHATKIT_EXAMPLE_PAGE="true").test_client()
    response = client.get("/example/static/example.js", headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    response.close()


@pytest.mark.parametrize(
    ("env", "switch", "enabled"),
    [
        ("development", None, True),
        ("production", None, False),
        ("test", None, False),
        ("production", "true", True),
        ("development", "false", False),
    ],
)
def test_the_example_page_is_on_by_default_only_in_development(make_app, env, switch, enabled):
    config = {"CHATKIT_ENV": env} | ({"CHATKIT_EXAMPLE_PAGE": switch} if switch else {})
    client = make_app(config).test_client()
    for path in ("/example", "/example/static/example.js"):
        response = client.get(path)
        assert response.status_code == (200 if enabled else 404), path
        if not enabled:
            assert response.get_json()["error"]["code"] == "not_found"
        response.close()


def test_the_example_page_loads_chatkit_from_the_cdn_and_wires_it_with_static_files(make_app):
    client = make_app(CHATKIT_EXAMPLE_PAGE="true").test_client()
    html = client.get("/example").get_data(as_text=True)
    assert f'<script src="{CHATKIT_SCRIPT_URL}" async></script>' in html
    assert '<script type="module" src="/example/static/example.js"></script>' in html
    assert "<openai-chatkit" in html
    # No inline script or style: the page's CSP forbids both.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html
    assert " style=" not in html


def test_the_example_page_csp_adds_exactly_what_chatkit_needs(make_app):
    client = make_app(CHATKIT_EXAMPLE_PAGE="true").test_client()
    policy = client.get("/example").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self' https://cdn.platform.openai.com"
    assert directives["frame-src"] == "https://cdn.platform.openai.com"
    assert directives["connect-src"] == "'self' https://api.openai.com"
    assert directives["default-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
    assert policy.count("https://") == 3


def test_the_example_page_policy_is_the_page_policy_plus_chatkits_origins(make_app):
    client = make_app(CHATKIT_EXAMPLE_PAGE="true").test_client()

    @client.application.get("/probe/html")
    def probe():
        return Response("<p>hi</p>", mimetype="text/html")

    def directives(path: str) -> dict[str, list[str]]:
        policy = client.get(path).headers["Content-Security-Policy"]
        return {name: sources for name, *sources in (d.split() for d in policy.split(";"))}

    page, example = directives("/probe/html"), directives("/example")
    for name, sources in page.items():
        assert example[name][: len(sources)] == sources, name
    added = {name: sources[len(page.get(name, [])) :] for name, sources in example.items()}
    assert {name: sources for name, sources in added.items() if sources} == {
        "script-src": ["https://cdn.platform.openai.com"],
        "frame-src": ["https://cdn.platform.openai.com"],
        "connect-src": ["'self'", "https://api.openai.com"],
    }


@pytest.mark.parametrize("mode", ["self_hosted", "hosted"])
def test_the_example_page_tells_its_script_the_mode_and_domain_key(make_app, mode):
    config = {"CHATKIT_EXAMPLE_PAGE": "true", "CHATKIT_MODE": mode, "CHATKIT_DOMAIN_KEY": "domain_pk_example"}
    html = make_app(config).test_client().get("/example").get_data(as_text=True)

    assert f'data-mode="{mode}"' in html
    assert 'data-domain-key="domain_pk_example"' in html


def test_other_html_pages_keep_the_strict_policy(make_app):
    # The example's relaxed script-src must not leak to other pages.
    client = make_app(CHATKIT_EXAMPLE_PAGE="true").test_client()
    app = client.application

    @app.get("/probe/html")
    def probe():
        return Response("<p>hi</p>", mimetype="text/html")

    policy = client.get("/probe/html").headers["Content-Security-Policy"]
    assert "cdn.platform.openai.com" not in policy
