"""CHATKIT_MODE: which ChatKit the service serves, what each mode imports, and the protocol's request types."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pytest

from chatkit_backend.config import ConfigError, Settings

BASE = {"CHATKIT_ENV": "test", "SECRET_KEY": "s" * 40}
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({}, "self_hosted"),
        ({"CHATKIT_WORKFLOW_ID": "wf_existing"}, "hosted"),
        ({"OPENAI_WORKFLOW_ID": "wf_existing"}, "hosted"),
        ({"CHATKIT_WORKFLOW_ID": "wf_existing", "CHATKIT_MODE": "self_hosted"}, "self_hosted"),
        ({"CHATKIT_MODE": "HOSTED"}, "hosted"),
    ],
)
def test_the_mode_defaults_to_hosted_only_for_deployments_that_name_a_workflow(environ, mode):
    assert Settings.from_env({**BASE, **environ}).chatkit_mode == mode


def test_an_unknown_mode_stops_start_up_naming_the_choices():
    with pytest.raises(ConfigError, match="CHATKIT_MODE='both' is not one of self_hosted, hosted"):
        Settings.from_env({**BASE, "CHATKIT_MODE": "both"})


def test_self_hosted_mode_needs_only_the_key():
    assert Settings.from_env({**BASE}).missing_chatkit_settings == ["OPENAI_API_KEY"]
    assert Settings.from_env({**BASE, "OPENAI_API_KEY": "sk-x"}).missing_chatkit_settings == []
    hosted = Settings.from_env({**BASE, "CHATKIT_MODE": "hosted", "OPENAI_API_KEY": "sk-x"})
    assert hosted.missing_chatkit_settings == ["CHATKIT_WORKFLOW_ID"]


def test_the_route_knows_every_request_type_of_the_package():
    from chatkit.types import ChatKitReq

    from chatkit_backend.selfhosted.routes import MODEL_REQUEST_TYPES, REQUEST_TYPES

    union = typing.get_args(typing.get_args(ChatKitReq)[0])
    package_types = {typing.get_args(cls.model_fields["type"].annotation)[0] for cls in union}
    assert package_types == REQUEST_TYPES
    assert MODEL_REQUEST_TYPES < REQUEST_TYPES


_IMPORTS = """
import sys
from chatkit_backend import create_app
app = create_app({config!r})
client = app.test_client()
client.get("/health")
client.post("/api/chatkit", json={{"type": "threads.list", "params": {{}}}})
print(sorted(m for m in ("chatkit", "agents", "openai") if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("mode_config", "imported"),
    [
        ({"CHATKIT_MODE": "hosted", "OPENAI_API_KEY": "sk-x", "CHATKIT_WORKFLOW_ID": "wf_x"}, []),
        ({"CHATKIT_MODE": "self_hosted"}, []),  # no key: nothing to serve, nothing imported
    ],
)
def test_chatkit_and_the_agents_sdk_are_not_imported_where_they_are_not_used(tmp_path, mode_config, imported):
    config = {**BASE, "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}", **mode_config}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS.format(config=config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stdout.strip().splitlines()[-1] == repr(imported)
