"""Typed settings: parsed once, every problem listed in one message, secrets kept out of repr."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatkit_backend.config import ConfigError, Settings, variable_names

ROOT = Path(__file__).resolve().parent.parent
# Production (the default environment) needs secrets of at least 32 characters.
KEY = "k" * 32


def test_defaults_need_only_a_secret_key():
    settings = Settings.from_env({"SECRET_KEY": KEY})
    assert settings.env == "production"
    assert settings.api_base == "https://api.openai.com"
    assert settings.ratelimit_storage_uri == "memory://"
    assert settings.trusted_proxy_hops == 0
    assert settings.cors_origins == ()
    assert settings.chatkit_configured is False


def test_every_problem_is_listed_in_one_error():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "CHATKIT_SESSION_RATE_LIMIT": "ten a minute",
                "TRUSTED_PROXY_HOPS": "-1",
                "CHATKIT_COOKIE_SAMESITE": "sometimes",
            }
        )
    message = str(caught.value)
    assert "SECRET_KEY is required" in message
    assert "CHATKIT_SESSION_RATE_LIMIT='ten a minute' is not a rate limit; expected e.g. '10/minute'" in message
    assert "TRUSTED_PROXY_HOPS='-1' is not a whole number from 0 to 10" in message
    assert "CHATKIT_COOKIE_SAMESITE='sometimes' is not one of Lax, Strict, None" in message
    assert len(caught.value.problems) == 4


def test_development_generates_a_per_process_secret_key():
    first = Settings.from_env({"CHATKIT_ENV": "development"})
    second = Settings.from_env({"CHATKIT_ENV": "development"})
    assert first.secret_key_generated is True
    assert first.secret_key
    assert first.secret_key != second.secret_key


def test_openai_workflow_id_is_accepted_as_an_alias():
    settings = Settings.from_env({"SECRET_KEY": KEY, "OPENAI_WORKFLOW_ID": "wf_seed", "OPENAI_API_KEY": "sk-x"})
    assert settings.workflow_id == "wf_seed"
    assert settings.chatkit_configured is True


def test_chatkit_workflow_id_wins_over_the_alias():
    settings = Settings.from_env({"SECRET_KEY": KEY, "OPENAI_WORKFLOW_ID": "wf_a", "CHATKIT_WORKFLOW_ID": "wf_b"})
    assert settings.workflow_id == "wf_b"


def test_lists_and_booleans_are_parsed():
    settings = Settings.from_env(
        {"SECRET_KEY": KEY, "CORS_ORIGINS": "https://a.example, https://b.example", "CHATKIT_HISTORY_ENABLED": "off"}
    )
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.history_enabled is False


def test_header_identity_requires_a_trusted_proxy():
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS >= 1"):
        Settings.from_env({"SECRET_KEY": KEY, "CHATKIT_IDENTITY_MODE": "header"})


def test_secrets_do_not_appear_in_repr():
    settings = Settings.from_env(
        {"SECRET_KEY": KEY, "OPENAI_API_KEY": "sk-very-secret", "CHATKIT_JWT_SECRET": "j" * 32}
    )
    assert "sk-very-secret" not in repr(settings)


def test_missing_credentials_do_not_stop_start_up(make_app):
    app = make_app()
    assert app.config["SETTINGS"].chatkit_configured is False
    assert app.test_client().get("/health").status_code == 200


def test_wsgi_exits_non_zero_with_every_problem_listed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "CHATKIT_SESSION_RATE_LIMIT": "ten a minute", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "SECRET_KEY is required" in result.stderr
    assert "is not a rate limit" in result.stderr
    assert "Traceback" not in result.stderr


def test_dotenv_file_is_loaded_by_wsgi(tmp_path):
    (tmp_path / ".env").write_text("CHATKIT_ENV=development\nCHATKIT_WORKFLOW_ID=wf_from_dotenv\n")
    script = "import wsgi; print(wsgi.app.config['SETTINGS'].workflow_id)"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wf_from_dotenv"


def test_every_variable_is_documented_in_readme_and_env_example():
    variables = variable_names()
    assert len(variables) > 40
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    assert sorted(v for v in variables if f"`{v}`" not in readme) == []
    assert sorted(v for v in variables if not re.search(rf"^{v}=", example, re.MULTILINE)) == []


def test_secret_key_and_urls_with_passwords_do_not_appear_in_repr():
    settings = Settings.from_env(
        {
            "SECRET_KEY": "secret-key-value-" + KEY,
            "DATABASE_URL": "postgresql://app:db-password@db/app",
            "RATELIMIT_STORAGE_URI": "redis://:redis-password@cache:6379/0",
            "CHATKIT_ADMIN_TOKEN": "admin-token-value-" + KEY,
            "CHATKIT_USER_ID_HMAC_KEY": "hmac-key-value",
        }
    )
    for secret in ("secret-key-value", "db-password", "redis-password", "admin-token-value", "hmac-key-value"):
        assert secret not in repr(settings)


# CORS_ORIGINS (finding 7): exact origins only


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "null",
        "https://*.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com.*",
        "https://(evil|app).example.com",
    ],
)
def test_cors_origins_that_are_not_scheme_host_port_stop_start_up(origin):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SECRET_KEY": KEY, "CORS_ORIGINS": f"https://ok.example, {origin}"})
    [problem] = caught.value.problems
    assert problem.startswith(f"CORS_ORIGINS: {origin!r} ")
    assert "not an origin; expected scheme://host[:port]" in problem or "has no valid port" in problem


def test_cors_origins_are_kept_as_browsers_send_them():
    settings = Settings.from_env(
        {"SECRET_KEY": KEY, "CORS_ORIGINS": "HTTPS://App.Example.com:443, http://localhost:5173, http://[::1]:80"}
    )
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173", "http://[::1]")


# Secret lengths (finding 8)


@pytest.mark.parametrize("name", ["SECRET_KEY", "CHATKIT_ADMIN_TOKEN", "CHATKIT_JWT_SECRET"])
def test_a_secret_shorter_than_32_characters_stops_production_start_up(name):
    environ = {"SECRET_KEY": KEY, name: "x" * 31}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    assert caught.value.problems == [
        f"{name} must be at least 32 characters in production; generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    ]
    assert "x" * 31 not in str(caught.value)
    assert Settings.from_env({**environ, name: "x" * 32})
    for env in ("development", "test"):
        assert Settings.from_env({**environ, "CHATKIT_ENV": env})


def test_an_unset_variable_reads_as_the_field_default():
    # Defaults are stated once, on the fields. The JWT secret picks the default algorithms (HS256 with a secret).
    environ = {"SECRET_KEY": KEY, "CHATKIT_ENV": "test", "CHATKIT_JWT_SECRET": "j" * 32}
    assert Settings.from_env(environ) == Settings(secret_key=KEY, env="test", jwt_secret="j" * 32)
