"""`flask --app chatkit_backend check [--live]`: validate the configuration, optionally against ChatKit or the model.

Self-hosted mode's live check sends one short request to the agent's model; hosted mode's creates and
cancels one ChatKit session. Each failure says which setting to fix; the key is never printed.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

CHECK_USER = "chatkit-backend-check"


def init_app(app: Flask) -> None:
    app.cli.add_command(check_command)


@click.command(
    "check",
    help="Validate the configuration; with --live, send one short request to the model (self-hosted) or create "
    "and cancel one ChatKit session (hosted).",
)
@click.option("--live", is_flag=True, help="Call the model (self-hosted) or ChatKit's sessions API (hosted) once.")
@with_appcontext
def check_command(live: bool) -> None:
    settings = current_app.config["SETTINGS"]
    problems = []
    if not settings.openai_api_key:
        problems.append("OPENAI_API_KEY is not set: create a key at platform.openai.com/api-keys.")
    if settings.self_hosted:
        pass  # the agent was loaded (and CHATKIT_AGENT checked) when the app was built
    elif not settings.workflow_id:
        problems.append("CHATKIT_WORKFLOW_ID is not set: copy the wf_... id of your published Agent Builder workflow.")
    elif not settings.workflow_id.startswith("wf_"):
        problems.append(f"CHATKIT_WORKFLOW_ID={settings.workflow_id!r} does not look like a workflow id (wf_...).")
    if settings.secret_key_generated:
        problems.append("SECRET_KEY is not set: anonymous identities will not survive a restart.")
    for problem in problems:
        click.echo(f"FAIL {problem}")
    if problems:
        raise SystemExit(1)
    if settings.self_hosted:
        model = _model(settings)
        agent = settings.agent or "the default agent"
        click.echo(f"ok   configuration (self-hosted, {agent}, model {model}, identity mode {settings.identity_mode})")
        if live:
            _live_model_check(settings, model)
        return
    click.echo(f"ok   configuration (workflow {settings.workflow_id}, identity mode {settings.identity_mode})")
    if live:
        _live_check()


def _model(settings) -> str:
    """The model the agent answers with: the team's agent's own when it names one, else CHATKIT_MODEL."""
    chatkit = current_app.extensions.get("chatkit_selfhosted")
    model = getattr(getattr(chatkit, "agent", None), "model", None)
    return model if isinstance(model, str) else settings.model


def _live_model_check(settings, model: str) -> None:
    import openai

    client = openai.OpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        organization=settings.openai_organization,
        project=settings.openai_project,
        timeout=min(settings.model_timeout, 30),
        max_retries=0,
    )
    try:
        response = client.responses.create(
            model=model, input="Reply with the word ok.", max_output_tokens=16, store=False
        )
    except openai.APIError as exc:
        problem, fix = _model_failure(exc, settings, model)
        click.echo(f"FAIL {problem}".replace(settings.openai_api_key, "[key]"))
        click.echo(f"     fix: {fix}")
        raise SystemExit(1) from None
    finally:
        client.close()
    usage = response.usage
    tokens = f", {usage.input_tokens} tokens in, {usage.output_tokens} out" if usage else ""
    click.echo(f"ok   live: {model} at {settings.openai_base_url} answered{tokens}")


def _model_failure(exc, settings, model: str) -> tuple[str, str]:
    """(what happened, what to fix) for a failed model call; 401 messages quote part of the key, so never those."""
    import openai

    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "message", "") if status != 401 else ""
    if isinstance(exc, openai.AuthenticationError):
        return (
            f"the model server refused the key ({status})",
            "OPENAI_API_KEY is wrong, revoked or for another server; create one at platform.openai.com/api-keys.",
        )
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return (
            f"cannot reach {settings.openai_base_url} ({type(exc).__name__})",
            "check OPENAI_BASE_URL (https://api.openai.com/v1 unless you use another Responses API server), "
            "DNS, TLS and any outbound proxy or firewall.",
        )
    code = getattr(exc, "code", None)
    if isinstance(exc, openai.NotFoundError) or code == "model_not_found" or getattr(exc, "param", None) == "model":
        return (
            f"the model {model!r} is unknown or not available to this key ({status}: {detail})",
            "set CHATKIT_MODEL (or your CHATKIT_AGENT's model) to a model this project can use.",
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return (
            f"the key may not use this model or project ({status}: {detail})",
            "check OPENAI_PROJECT and OPENAI_ORGANIZATION, and the project's model permissions.",
        )
    if isinstance(exc, openai.RateLimitError):
        return (f"rate limited or out of quota ({status}: {detail})", "check the organization's billing and limits.")
    return (
        f"the model server answered {status}: {detail}",
        "see the message; check OPENAI_BASE_URL and CHATKIT_MODEL.",
    )


def _live_check() -> None:
    from chatkit_backend.upstream import UpstreamError, get_upstream

    upstream = get_upstream()
    try:
        session = upstream.create_session(CHECK_USER)
        upstream.cancel_session(session.id)
    except UpstreamError as exc:
        click.echo(f"FAIL {exc.code}: {exc.message}")
        click.echo(f"     fix: {_FIXES.get(exc.code, 'see the message above.')}")
        raise SystemExit(1) from None
    click.echo(f"ok   live: created and cancelled session {session.id}")


_FIXES = {
    "upstream_bad_request": "ChatKit rejected the request; if it names the 'OpenAI-Beta' header, a proxy strips it. "
    "Check CHATKIT_WORKFLOW_VERSION and the session options.",
    "upstream_auth_failed": "OPENAI_API_KEY is wrong or revoked; create a key in the project that owns the workflow.",
    "workflow_not_found": "The key's organization/project must own the workflow: set OPENAI_ORGANIZATION and "
    "OPENAI_PROJECT to the workflow's, or use a key from that project; check CHATKIT_WORKFLOW_ID.",
    "upstream_unreachable": "Check CHATKIT_API_BASE (https://api.openai.com), DNS, TLS and outbound firewall/proxy.",
    "upstream_timeout": "ChatKit did not answer in time; check egress and raise CHATKIT_READ_TIMEOUT if needed.",
    "upstream_rate_limited": "The organization's rate limit is reached; retry later.",
    "upstream_error": "ChatKit is failing; retry later (status.openai.com).",
    "upstream_invalid_response": "Something between here and ChatKit answers instead of it: check CHATKIT_API_BASE "
    "and proxies.",
}
