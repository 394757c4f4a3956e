"""`flask --app chatkit_backend check [--live]`: validate the configuration, optionally against ChatKit."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

CHECK_USER = "chatkit-backend-check"


def init_app(app: Flask) -> None:
    app.cli.add_command(check_command)


@click.command("check", help="Validate the configuration; with --live, create and cancel one ChatKit session.")
@click.option("--live", is_flag=True, help="Create and cancel one session for a fixed check user.")
@with_appcontext
def check_command(live: bool) -> None:
    settings = current_app.config["SETTINGS"]
    problems = []
    if not settings.openai_api_key:
        problems.append("OPENAI_API_KEY is not set: create a key at platform.openai.com/api-keys.")
    if not settings.workflow_id:
        problems.append("CHATKIT_WORKFLOW_ID is not set: copy the wf_... id of your published Agent Builder workflow.")
    elif not settings.workflow_id.startswith("wf_"):
        problems.append(f"CHATKIT_WORKFLOW_ID={settings.workflow_id!r} does not look like a workflow id (wf_...).")
    if settings.secret_key_generated:
        problems.append("SECRET_KEY is not set: anonymous identities will not survive a restart.")
    for problem in problems:
        click.echo(f"FAIL {problem}")
    if problems:
        raise SystemExit(1)
    click.echo(f"ok   configuration (workflow {settings.workflow_id}, identity mode {settings.identity_mode})")
    if live:
        _live_check()


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
