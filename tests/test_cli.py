"""`flask check [--live]`: configuration problems and live failures each come with what to fix."""

from __future__ import annotations

from tests.conftest import free_port


def _check(app, *args: str):
    return app.test_cli_runner().invoke(args=["check", *args])


def test_check_reports_missing_credentials(make_app):
    result = _check(make_app())
    assert result.exit_code == 1
    assert "OPENAI_API_KEY is not set" in result.output
    assert "CHATKIT_WORKFLOW_ID is not set" in result.output


def test_check_passes_with_configuration(make_app, chatkit_config):
    result = _check(make_app(chatkit_config))
    assert result.exit_code == 0
    assert "ok   configuration" in result.output


def test_live_check_creates_and_cancels_one_session(make_app, chatkit_config, chatkit_standin):
    result = _check(make_app(chatkit_config), "--live")
    [created] = chatkit_standin.requests_to("/v1/chatkit/sessions", "POST")
    assert result.exit_code == 0
    assert created.body["user"] == "chatkit-backend-check"
    assert len([r for r in chatkit_standin.requests if r.path.endswith("/cancel")]) == 1


def test_live_check_explains_an_organization_or_project_mismatch(make_app, chatkit_config, chatkit_standin):
    chatkit_standin.require_organization("org_owner", "proj_owner")
    result = _check(make_app(chatkit_config, OPENAI_PROJECT="proj_other"), "--live")
    assert result.exit_code == 1
    assert "workflow_not_found" in result.output
    assert "OPENAI_PROJECT" in result.output


def test_live_check_explains_a_bad_key_without_printing_it(make_app, chatkit_config):
    result = _check(make_app(chatkit_config, OPENAI_API_KEY="sk-bad-key-0000"), "--live")
    assert result.exit_code == 1
    assert "upstream_auth_failed" in result.output
    assert "sk-bad-key-0000" not in result.output


def test_live_check_explains_an_unreachable_upstream(make_app, chatkit_config):
    app = make_app(chatkit_config, CHATKIT_API_BASE=f"http://127.0.0.1:{free_port()}", CHATKIT_MAX_RETRIES="0")
    result = _check(app, "--live")
    assert result.exit_code == 1
    assert "upstream_unreachable" in result.output
    assert "CHATKIT_API_BASE" in result.output
