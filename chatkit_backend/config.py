"""Typed settings, read once from the environment at start-up.

Every variable the service reads is declared here and nowhere else; the README table and
`.env.example` document the same names.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from limits import parse_many

T = TypeVar("T")

ENVIRONMENTS = ("production", "development", "test")
IDENTITY_MODES = ("anonymous", "jwt", "header")
CHATKIT_MODES = ("self_hosted", "hosted")
SAMESITE_VALUES = ("Lax", "Strict", "None")
# Shortest SECRET_KEY, CHATKIT_ADMIN_TOKEN and CHATKIT_JWT_SECRET production accepts (token_urlsafe(32) gives 43).
MIN_SECRET_LENGTH = 32
# An origin as browsers send it: scheme://host[:port], nothing else (no wildcard, path, or 'null').
_ORIGIN = re.compile(r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", re.IGNORECASE)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# What uploads may be, judged by their content (chatkit_backend/selfhosted/uploads.py knows each).
UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain")
AGENT_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class ConfigError(Exception):
    """Raised at start-up with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Settings:
    """The service's whole configuration. Build it with `Settings.from_env`."""

    # Core
    env: str = "production"
    secret_key: str = field(default="", repr=False)
    secret_key_generated: bool = False
    # URLs may carry a password.
    database_url: str | None = field(default=None, repr=False)
    auto_migrate: bool | None = None
    ratelimit_storage_uri: str = field(default="memory://", repr=False)
    ratelimit_key_prefix: str = "chatkit"
    cors_origins: tuple[str, ...] = ()
    trusted_proxy_hops: int = 0
    max_content_length: int = 1024 * 1024
    log_level: str = "INFO"
    hsts_seconds: int = 31536000

    # Which ChatKit this service serves: its own server (self_hosted) or hosted workflow sessions
    chatkit_mode: str = "self_hosted"

    # Upstream (hosted ChatKit sessions API)
    openai_api_key: str | None = field(default=None, repr=False)
    workflow_id: str | None = None
    workflow_version: str | None = None
    api_base: str = "https://api.openai.com"
    openai_organization: str | None = None
    openai_project: str | None = None
    upstream_connect_timeout: float = 3.05
    upstream_read_timeout: float = 15.0
    upstream_max_retries: int = 2
    upstream_retry_budget_seconds: float = 8.0
    upstream_pool_size: int = 256  # keep-alive upstream connections kept per worker

    # Self-hosted ChatKit server (POST /api/chatkit) and its Agents SDK agent
    openai_base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4.1-mini"
    instructions: str = "You are a helpful assistant."
    model_timeout: float = 60.0
    model_max_retries: int = 2
    history_items: int = 30
    tracing_enabled: bool = False
    domain_key: str | None = None
    message_rate_limit: str = "30/minute;500/day"
    message_rate_limit_per_address: str = "120/minute;5000/day"
    read_rate_limit: str = "300/minute"
    read_rate_limit_per_address: str = "1200/minute"
    agent: str | None = None  # package.module:name of the team's own Agents SDK agent
    auto_title: bool = True
    title_model: str | None = None
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_types: tuple[str, ...] = UPLOAD_TYPES
    upload_folder: str | None = None

    # Sessions
    session_expires_seconds: int | None = None
    session_max_requests_per_minute: int | None = None
    file_upload_enabled: bool | None = None
    file_upload_max_files: int | None = None
    file_upload_max_file_size_mb: int | None = None
    history_enabled: bool | None = None
    history_recent_threads: int | None = None
    automatic_thread_titling: bool | None = None
    allowed_state_variables: tuple[str, ...] = ()
    session_rate_limit: str = "10/minute;100/hour"
    session_rate_limit_per_address: str = "60/minute;1000/hour"
    threads_rate_limit: str = "60/minute"
    threads_rate_limit_per_address: str = "120/minute;2000/hour"

    # Identity
    identity_mode: str = "anonymous"
    user_cookie_name: str = "chatkit_uid"
    cookie_samesite: str = "Lax"
    cookie_max_age: int = 30 * 24 * 3600
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    user_header: str = "X-Forwarded-User"
    user_id_hmac_key: str | None = field(default=None, repr=False)

    # Analytics and error reports
    analytics_max_event_bytes: int = 16 * 1024
    analytics_max_batch_events: int = 500
    analytics_store_client_address: bool = False
    analytics_spool_path: str | None = None
    analytics_retention_days: int = 90
    analytics_rate_limit: str = "1200/minute"
    analytics_event_rate_limit: str = "3000/minute;30000/hour"
    admin_token: str | None = field(default=None, repr=False)
    admin_auth_failure_limit: str = "10/minute;100/day"

    # Operations: GET /metrics (Prometheus), and where gunicorn's workers write their samples
    metrics_enabled: bool = False
    metrics_multiprocess_dir: str | None = None

    # Frontend helper
    example_page_enabled: bool | None = None

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def self_hosted(self) -> bool:
        return self.chatkit_mode == "self_hosted"

    @property
    def identity_cookie_always_secure(self) -> bool:
        """True when the identity cookie is Secure on every answer (production, or SameSite=None)."""
        return self.env == "production" or self.cookie_samesite == "None"

    @property
    def chatkit_configured(self) -> bool:
        """True when the hosted sessions API can be called (hosted mode, key and workflow set)."""
        return not self.self_hosted and bool(self.openai_api_key and self.workflow_id)

    @property
    def missing_chatkit_settings(self) -> list[str]:
        """The settings this mode still needs before it can serve a conversation."""
        needed = [("OPENAI_API_KEY", self.openai_api_key)]
        if not self.self_hosted:
            needed.append(("CHATKIT_WORKFLOW_ID", self.workflow_id))
        return [name for name, value in needed if not value]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse `environ` (default: the process environment); raise ConfigError listing every problem."""
        reader = _Reader(os.environ if environ is None else environ)
        values = _read_all(reader)
        if reader.problems:
            raise ConfigError(reader.problems)
        return cls(**values)


def _read_all(r: _Reader) -> dict[str, Any]:
    env = r.choice("CHATKIT_ENV", "production", ENVIRONMENTS)
    secret_key = r.text("SECRET_KEY")
    generated = False
    if not secret_key:
        if env == "production":
            r.problem("SECRET_KEY is required (set CHATKIT_ENV=development to use a random per-process key)")
        secret_key = secrets.token_urlsafe(32)
        generated = True
    identity_mode = r.choice("CHATKIT_IDENTITY_MODE", "anonymous", IDENTITY_MODES)
    hops = r.integer("TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=10)
    jwt_secret = r.text("CHATKIT_JWT_SECRET")
    jwt_public_key = r.text("CHATKIT_JWT_PUBLIC_KEY")
    if identity_mode == "jwt" and not (jwt_secret or jwt_public_key):
        r.problem("CHATKIT_IDENTITY_MODE=jwt needs CHATKIT_JWT_SECRET (HS256) or CHATKIT_JWT_PUBLIC_KEY (RS256/ES256)")
    workflow_id = r.text("CHATKIT_WORKFLOW_ID") or r.text("OPENAI_WORKFLOW_ID")
    # Unset: deployments that name a hosted workflow keep it; everyone else gets their own server.
    mode = r.choice("CHATKIT_MODE", "hosted" if workflow_id else "self_hosted", CHATKIT_MODES)
    if identity_mode == "header" and hops < 1:
        r.problem("CHATKIT_IDENTITY_MODE=header needs TRUSTED_PROXY_HOPS >= 1 (the header must come from your proxy)")
    admin_token = r.text("CHATKIT_ADMIN_TOKEN")
    if env == "production":
        for name, value in (
            ("SECRET_KEY", secret_key),
            ("CHATKIT_ADMIN_TOKEN", admin_token),
            ("CHATKIT_JWT_SECRET", jwt_secret),
        ):
            if value and len(value) < MIN_SECRET_LENGTH:
                # A short secret can be guessed; the message never repeats the value.
                r.problem(
                    f"{name} must be at least {MIN_SECRET_LENGTH} characters in production; generate one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
    samesite = r.choice("CHATKIT_COOKIE_SAMESITE", "Lax", SAMESITE_VALUES)
    always_secure = env == "production" or samesite == "None"
    # __Host-: a sibling subdomain cannot plant it (browsers refuse it with Domain, or without Secure).
    cookie_name = r.text("CHATKIT_USER_COOKIE_NAME") or ("__Host-chatkit_uid" if always_secure else "chatkit_uid")
    if cookie_name.startswith(("__Host-", "__Secure-")) and not always_secure:
        r.problem(
            f"CHATKIT_USER_COOKIE_NAME={cookie_name!r}: browsers keep a __Host-/__Secure- cookie only when it is "
            "Secure; use CHATKIT_ENV=production or CHATKIT_COOKIE_SAMESITE=None, or a name without the prefix"
        )
    return {
        "env": env,
        "secret_key": secret_key,
        "secret_key_generated": generated,
        "database_url": r.text("DATABASE_URL"),
        "auto_migrate": r.flag("CHATKIT_AUTO_MIGRATE", None),
        "ratelimit_storage_uri": r.text("RATELIMIT_STORAGE_URI") or "memory://",
        "ratelimit_key_prefix": r.text("RATELIMIT_KEY_PREFIX") or "chatkit",
        "cors_origins": r.origins("CORS_ORIGINS"),
        "trusted_proxy_hops": hops,
        "max_content_length": r.integer("MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1024),
        "log_level": r.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        "hsts_seconds": r.integer("CHATKIT_HSTS_SECONDS", 31536000, minimum=0),
        "chatkit_mode": mode,
        "openai_api_key": r.text("OPENAI_API_KEY"),
        "workflow_id": workflow_id,
        "workflow_version": r.text("CHATKIT_WORKFLOW_VERSION"),
        "api_base": (r.text("CHATKIT_API_BASE") or "https://api.openai.com").rstrip("/"),
        "openai_organization": r.text("OPENAI_ORGANIZATION"),
        "openai_project": r.text("OPENAI_PROJECT"),
        "upstream_connect_timeout": r.number("CHATKIT_CONNECT_TIMEOUT", 3.05, minimum=0.1, maximum=20),
        "upstream_read_timeout": r.number("CHATKIT_READ_TIMEOUT", 15.0, minimum=0.1, maximum=25),
        "upstream_max_retries": r.integer("CHATKIT_MAX_RETRIES", 2, minimum=0, maximum=5),
        "upstream_retry_budget_seconds": r.number("CHATKIT_RETRY_BUDGET_SECONDS", 8.0, minimum=0, maximum=20),
        "upstream_pool_size": r.integer("CHATKIT_UPSTREAM_POOL_SIZE", 256, minimum=1, maximum=1000),
        "openai_base_url": (r.text("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/"),
        "model": r.text("CHATKIT_MODEL") or "gpt-4.1-mini",
        "instructions": r.text("CHATKIT_INSTRUCTIONS") or "You are a helpful assistant.",
        "model_timeout": r.number("CHATKIT_MODEL_TIMEOUT", 60.0, minimum=1, maximum=600),
        "model_max_retries": r.integer("CHATKIT_MODEL_MAX_RETRIES", 2, minimum=0, maximum=5),
        "history_items": r.integer("CHATKIT_HISTORY_ITEMS", 30, minimum=1, maximum=100),
        "tracing_enabled": r.flag("CHATKIT_TRACING", False),
        "domain_key": r.text("CHATKIT_DOMAIN_KEY"),
        "message_rate_limit": r.rate_limit("CHATKIT_MESSAGE_RATE_LIMIT", "30/minute;500/day"),
        "message_rate_limit_per_address": r.rate_limit("CHATKIT_MESSAGE_RATE_LIMIT_PER_ADDRESS", "120/minute;5000/day"),
        "read_rate_limit": r.rate_limit("CHATKIT_READ_RATE_LIMIT", "300/minute"),
        "read_rate_limit_per_address": r.rate_limit("CHATKIT_READ_RATE_LIMIT_PER_ADDRESS", "1200/minute"),
        "agent": r.agent_spec("CHATKIT_AGENT"),
        "auto_title": r.flag("CHATKIT_AUTO_TITLE", True),
        "title_model": r.text("CHATKIT_TITLE_MODEL"),
        "upload_max_bytes": r.integer(
            "CHATKIT_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1024, maximum=512 * 1024 * 1024
        ),
        "upload_types": r.upload_types("CHATKIT_UPLOAD_TYPES"),
        "upload_folder": r.text("CHATKIT_UPLOAD_FOLDER"),
        "session_expires_seconds": r.integer("CHATKIT_SESSION_EXPIRES_SECONDS", None, minimum=1, maximum=600),
        "session_max_requests_per_minute": r.integer("CHATKIT_SESSION_MAX_REQUESTS_PER_MINUTE", None, minimum=1),
        "file_upload_enabled": r.flag("CHATKIT_FILE_UPLOAD_ENABLED", None),
        "file_upload_max_files": r.integer("CHATKIT_FILE_UPLOAD_MAX_FILES", None, minimum=1),
        "file_upload_max_file_size_mb": r.integer("CHATKIT_FILE_UPLOAD_MAX_FILE_SIZE_MB", None, minimum=1, maximum=512),
        "history_enabled": r.flag("CHATKIT_HISTORY_ENABLED", None),
        "history_recent_threads": r.integer("CHATKIT_HISTORY_RECENT_THREADS", None, minimum=1),
        "automatic_thread_titling": r.flag("CHATKIT_AUTOMATIC_THREAD_TITLING", None),
        "allowed_state_variables": r.items("CHATKIT_ALLOWED_STATE_VARIABLES"),
        "session_rate_limit": r.rate_limit("CHATKIT_SESSION_RATE_LIMIT", "10/minute;100/hour"),
        "session_rate_limit_per_address": r.rate_limit("CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS", "60/minute;1000/hour"),
        "threads_rate_limit": r.rate_limit("CHATKIT_THREADS_RATE_LIMIT", "60/minute"),
        "threads_rate_limit_per_address": r.rate_limit(
            "CHATKIT_THREADS_RATE_LIMIT_PER_ADDRESS", "120/minute;2000/hour"
        ),
        "identity_mode": identity_mode,
        "user_cookie_name": cookie_name,
        "cookie_samesite": samesite,
        "cookie_max_age": r.integer("CHATKIT_COOKIE_MAX_AGE", 30 * 24 * 3600, minimum=60),
        "jwt_secret": jwt_secret,
        "jwt_public_key": jwt_public_key,
        "jwt_algorithms": r.items("CHATKIT_JWT_ALGORITHMS") or (("HS256",) if jwt_secret else ("RS256", "ES256")),
        "jwt_issuer": r.text("CHATKIT_JWT_ISSUER"),
        "jwt_audience": r.text("CHATKIT_JWT_AUDIENCE"),
        "user_header": r.text("CHATKIT_USER_HEADER") or "X-Forwarded-User",
        "user_id_hmac_key": r.text("CHATKIT_USER_ID_HMAC_KEY"),
        "analytics_max_event_bytes": r.integer("CHATKIT_ANALYTICS_MAX_EVENT_BYTES", 16 * 1024, minimum=256),
        "analytics_max_batch_events": r.integer("CHATKIT_ANALYTICS_MAX_BATCH_EVENTS", 500, minimum=1, maximum=10000),
        "analytics_store_client_address": r.flag("CHATKIT_ANALYTICS_STORE_CLIENT_ADDRESS", False),
        "analytics_spool_path": r.text("CHATKIT_ANALYTICS_SPOOL_PATH"),
        "analytics_retention_days": r.integer("CHATKIT_ANALYTICS_RETENTION_DAYS", 90, minimum=1),
        "analytics_rate_limit": r.rate_limit("CHATKIT_ANALYTICS_RATE_LIMIT", "1200/minute"),
        "analytics_event_rate_limit": r.rate_limit("CHATKIT_ANALYTICS_EVENT_RATE_LIMIT", "3000/minute;30000/hour"),
        "admin_token": admin_token,
        "admin_auth_failure_limit": r.rate_limit("CHATKIT_ADMIN_AUTH_FAILURE_LIMIT", "10/minute;100/day"),
        "metrics_enabled": r.flag("CHATKIT_METRICS", False),
        "metrics_multiprocess_dir": r.text("PROMETHEUS_MULTIPROC_DIR"),
        "example_page_enabled": r.flag("CHATKIT_EXAMPLE_PAGE", None),
    }


class _Reader:
    """Reads typed values from a mapping, collecting problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def _parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problem(f"{name}={raw!r} is not {expected}")
            return default

    def integer(self, name: str, default: Any, *, minimum: int | None = None, maximum: int | None = None) -> Any:
        return self._parse(
            name, default, _bounded(int, minimum, maximum), _describe("a whole number", minimum, maximum)
        )

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        return self._parse(name, default, _bounded(float, minimum, maximum), _describe("a number", minimum, maximum))

    def flag(self, name: str, default: Any) -> Any:
        return self._parse(name, default, _parse_bool, "a boolean; expected true/false, 1/0, yes/no or on/off")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        def parse(raw: str) -> str:
            for choice in choices:
                if raw.lower() == choice.lower():
                    return choice
            raise ValueError(raw)

        return self._parse(name, default, parse, "one of " + ", ".join(choices))

    def items(self, name: str) -> tuple[str, ...]:
        raw = self.text(name) or ""
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def origins(self, name: str) -> tuple[str, ...]:
        """Comma-separated origins, each exactly scheme://host[:port], lower-cased, default port dropped."""
        found = []
        for item in self.items(name):
            match = _ORIGIN.fullmatch(item)
            if match is None:
                self.problem(
                    f"{name}: {item!r} is not an origin; expected scheme://host[:port] such as "
                    "https://app.example.com (no '*', 'null', wildcard subdomain, path or trailing slash)"
                )
                continue
            scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
            if port is not None and not 1 <= int(port) <= 65535:
                self.problem(f"{name}: {item!r} has no valid port")
                continue
            # Browsers leave the default port out of Origin: keep it out, so the comparison is exact.
            port = None if port is None or str(int(port)) == _DEFAULT_PORTS[scheme] else str(int(port))
            found.append(f"{scheme}://{host}" + (f":{port}" if port else ""))
        return tuple(found)

    def agent_spec(self, name: str) -> str | None:
        return self._parse(
            name, None, lambda raw: raw if AGENT_SPEC.match(raw) else _fail(raw), "package.module:name of an Agent"
        )

    def upload_types(self, name: str) -> tuple[str, ...]:
        chosen = tuple(item.lower() for item in self.items(name))
        unknown = [item for item in chosen if item not in UPLOAD_TYPES]
        if unknown:
            self.problem(
                f"{name} names types uploads cannot be checked for: {', '.join(unknown)}; "
                f"choose from {', '.join(UPLOAD_TYPES)}"
            )
        return tuple(item for item in chosen if item in UPLOAD_TYPES) or UPLOAD_TYPES

    def rate_limit(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            parse_many(raw)
            return raw

        return self._parse(name, default, parse, "a rate limit; expected e.g. '10/minute' or '10/minute;100/hour'")


def _fail(raw: str) -> Any:
    raise ValueError(raw)


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _bounded(kind: Callable[[str], Any], minimum: Any, maximum: Any) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError(raw)
        return value

    return parse


def _describe(kind: str, minimum: Any, maximum: Any) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} of at least {minimum}"
    return kind
