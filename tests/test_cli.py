"""`flask check [--live]`: configuration problems and live failures each come with what to fix."""

from __future__ import annotations

from tests.conftest import free_port
from tests.selfhosted_support import selfhosted_config


def _check(app, *args: str):
    return app.test_cli_runner().invoke(args=["check", *args])


def test_check_reports_missing_credentials(make_app):
    result = _check(make_app(CHATKIT_MODE="hosted"))
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


def test_self_hosted_check_needs_no_workflow(make_app, responses_standin):
    result = _check(make_app(selfhosted_config(responses_standin)))
    assert result.exit_code == 0, result.output
    assert "ok   configuration (self-hosted, the default agent, model gpt-4.1-mini" in result.output
    assert "CHATKIT_WORKFLOW_ID" not in result.output


def test_self_hosted_live_check_sends_one_short_request_to_the_model(make_app, responses_standin):
    app = make_app(
        selfhosted_config(responses_standin), CHATKIT_AGENT="examples.support_agent:build", CHATKIT_MODEL="gpt-x"
    )
    result = _check(app, "--live")
    assert result.exit_code == 0, result.output
    [request] = responses_standin.requests()
    assert (request.body["model"], request.body["input"]) == ("gpt-x", "Reply with the word ok.")
    assert f"ok   live: gpt-x at {responses_standin.base_url} answered, " in result.output


def test_self_hosted_live_check_names_the_key_without_printing_it(make_app, responses_standin):
    result = _check(make_app(selfhosted_config(responses_standin), OPENAI_API_KEY="sk-bad-key-1111"), "--live")
    assert result.exit_code == 1
    assert "refused the key (401)" in result.output
    assert "OPENAI_API_KEY" in result.output
    assert "sk-bad-key-1111" not in result.output


def test_self_hosted_live_check_names_an_unreachable_base_url(make_app, responses_standin):
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    result = _check(make_app(selfhosted_config(responses_standin), OPENAI_BASE_URL=base_url), "--live")
    assert result.exit_code == 1
    assert f"cannot reach {base_url}" in result.output
    assert "OPENAI_BASE_URL" in result.output


def test_self_hosted_live_check_names_an_unknown_model(make_app, responses_standin):
    responses_standin.inject(
        "status", status=404, code="model_not_found", message="The model `gpt-nope` does not exist."
    )
    result = _check(make_app(selfhosted_config(responses_standin), CHATKIT_MODEL="gpt-nope"), "--live")
    assert result.exit_code == 1
    assert "the model 'gpt-nope' is unknown" in result.output
    assert "CHATKIT_MODEL" in result.output
