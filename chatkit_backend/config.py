"""Typed settings, read once from the environment at start-up.

Every variable the service reads is declared here and nowhere else; the README table and
`.env.example` document the same names.

To add a setting, add one line to `Settings`: the field, its type, and a declaration that names
its environment variable, its default and its bounds, e.g.
`retry_limit: int = integer("CHATKIT_RETRY_LIMIT", 3, minimum=0, maximum=10)`.
The declarations are `text`, `url`, `integer`, `number`, `flag`, `choice`, `items`, `origins`,
`matching`, `content_types` and `rate_limit`; pass `secret=True` to `text` to keep the value out of repr.
`from_env` reads every declared field; only a default that depends on another setting, or a check across settings,
needs code in `_read_all`. Then document the variable in README.md and `.env.example`
(tests/test_config.py checks both).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from limits import parse_many

ENVIRONMENTS = ("production", "development", "test")
IDENTITY_MODES = ("anonymous", "jwt", "header")
CHATKIT_MODES = ("self_hosted", "hosted")
SAMESITE_VALUES = ("Lax", "Strict", "None")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Shortest SECRET_KEY, CHATKIT_ADMIN_TOKEN and CHATKIT_JWT_SECRET production accepts (token_urlsafe(32) gives 43).
MIN_SECRET_LENGTH = 32
# Read when CHATKIT_WORKFLOW_ID is unset (the name older deployments use).
WORKFLOW_ID_ALIAS = "OPENAI_WORKFLOW_ID"
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


class _Invalid(ValueError):
    """A value with problems that need their own messages (one per bad item of a list)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(*problems)


# Parsers: each returns the value or raises ValueError.


def _split(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_origins(name: str, raw: str) -> tuple[str, ...]:
    found, problems = [], []
    for item in _split(raw):
        match = _ORIGIN.fullmatch(item)
        if match is None:
            problems.append(
                f"{name}: {item!r} is not an origin; expected scheme://host[:port] such as "
                "https://app.example.com (no '*', 'null', wildcard subdomain, path or trailing slash)"
            )
            continue
        scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3)
        if port is not None and not 1 <= int(port) <= 65535:
            problems.append(f"{name}: {item!r} has no valid port")
            continue
        # Browsers leave the default port out of Origin: keep it out, so the comparison is exact.
        port = None if port is None or str(int(port)) == _DEFAULT_PORTS[scheme] else str(int(port))
        found.append(f"{scheme}://{host}" + (f":{port}" if port else ""))
    if problems:
        raise _Invalid(problems)
    return tuple(found)


def _parse_upload_types(name: str, raw: str) -> tuple[str, ...]:
    chosen = tuple(item.lower() for item in _split(raw))
    unknown = [item for item in chosen if item not in UPLOAD_TYPES]
    if unknown:
        raise _Invalid(
            [
                f"{name} names types uploads cannot be checked for: {', '.join(unknown)}; "
                f"choose from {', '.join(UPLOAD_TYPES)}"
            ]
        )
    return chosen


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


# Declarations: each returns a dataclass field carrying its variable, parser and the words of its error.


def _setting(var: str, default: Any, parse: Callable[[str], Any], expected: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"var": var, "parse": parse, "expected": expected})


def text(var: str, default: str | None = None, *, secret: bool = False) -> Any:
    """A string; surrounding white space is dropped and an empty value counts as unset."""
    return _setting(var, default, str, "text", secret=secret)


def url(var: str, default: str) -> Any:
    """A base URL, kept without its trailing slash."""
    return _setting(var, default, lambda raw: raw.rstrip("/"), "a URL")


def integer(var: str, default: int | None, *, minimum: int | None = None, maximum: int | None = None) -> Any:
    return _setting(var, default, _bounded(int, minimum, maximum), _describe("a whole number", minimum, maximum))


def number(var: str, default: float, *, minimum: float, maximum: float) -> Any:
    return _setting(var, default, _bounded(float, minimum, maximum), _describe("a number", minimum, maximum))


def flag(var: str, default: bool | None) -> Any:
    return _setting(var, default, _parse_bool, "a boolean; expected true/false, 1/0, yes/no or on/off")


def choice(var: str, default: str, choices: tuple[str, ...]) -> Any:
    """One of `choices`, matched without regard to case and kept as spelled in `choices`."""

    def parse(raw: str) -> str:
        for option in choices:
            if raw.lower() == option.lower():
                return option
        raise ValueError(raw)

    return _setting(var, default, parse, "one of " + ", ".join(choices))


def items(var: str, default: tuple[str, ...] = ()) -> Any:
    """A comma-separated list; a list of nothing counts as unset."""
    return _setting(var, default, _split, "a list")


def origins(var: str) -> Any:
    """Comma-separated origins, each exactly scheme://host[:port], lower-cased, default port dropped."""
    return _setting(var, (), lambda raw: _parse_origins(var, raw), "a list of origins")


def matching(var: str, pattern: re.Pattern[str], expected: str) -> Any:
    """A string that matches `pattern`; unset by default."""

    def parse(raw: str) -> str:
        if not pattern.match(raw):
            raise ValueError(raw)
        return raw

    return _setting(var, None, parse, expected)


def content_types(var: str) -> Any:
    """Comma-separated content types, each one of UPLOAD_TYPES, lower-cased; all of them by default."""
    return _setting(var, UPLOAD_TYPES, lambda raw: _parse_upload_types(var, raw), "a list of content types")


def rate_limit(var: str, default: str) -> Any:
    def parse(raw: str) -> str:
        parse_many(raw)
        return raw

    return _setting(var, default, parse, "a rate limit; expected e.g. '10/minute' or '10/minute;100/hour'")


@dataclass(frozen=True)
class Settings:
    """The service's whole configuration. Build it with `Settings.from_env`."""

    # Core
    env: str = choice("CHATKIT_ENV", "production", ENVIRONMENTS)
    secret_key: str = text("SECRET_KEY", "", secret=True)
    secret_key_generated: bool = False
    # URLs may carry a password.
    database_url: str | None = text("DATABASE_URL", secret=True)
    auto_migrate: bool | None = flag("CHATKIT_AUTO_MIGRATE", None)
    ratelimit_storage_uri: str = text("RATELIMIT_STORAGE_URI", "memory://", secret=True)
    ratelimit_key_prefix: str = text("RATELIMIT_KEY_PREFIX", "chatkit")
    cors_origins: tuple[str, ...] = origins("CORS_ORIGINS")
    trusted_proxy_hops: int = integer("TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=10)
    max_content_length: int = integer("MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1024)
    log_level: str = choice("LOG_LEVEL", "INFO", LOG_LEVELS)
    hsts_seconds: int = integer("CHATKIT_HSTS_SECONDS", 31536000, minimum=0)

    # Which ChatKit this service serves: its own server (self_hosted) or hosted workflow sessions.
    # Unset: hosted when a workflow is named (see _read_all).
    chatkit_mode: str = choice("CHATKIT_MODE", "self_hosted", CHATKIT_MODES)

    # Upstream (hosted ChatKit sessions API)
    openai_api_key: str | None = text("OPENAI_API_KEY", secret=True)
    workflow_id: str | None = text("CHATKIT_WORKFLOW_ID")
    workflow_version: str | None = text("CHATKIT_WORKFLOW_VERSION")
    api_base: str = url("CHATKIT_API_BASE", "https://api.openai.com")
    openai_organization: str | None = text("OPENAI_ORGANIZATION")
    openai_project: str | None = text("OPENAI_PROJECT")
    upstream_connect_timeout: float = number("CHATKIT_CONNECT_TIMEOUT", 3.05, minimum=0.1, maximum=20)
    upstream_read_timeout: float = number("CHATKIT_READ_TIMEOUT", 15.0, minimum=0.1, maximum=25)
    upstream_max_retries: int = integer("CHATKIT_MAX_RETRIES", 2, minimum=0, maximum=5)
    upstream_retry_budget_seconds: float = number("CHATKIT_RETRY_BUDGET_SECONDS", 8.0, minimum=0, maximum=20)
    # Keep-alive upstream connections kept per worker.
    upstream_pool_size: int = integer("CHATKIT_UPSTREAM_POOL_SIZE", 256, minimum=1, maximum=1000)

    # Self-hosted ChatKit server (POST /api/chatkit) and its Agents SDK agent
    openai_base_url: str = url("OPENAI_BASE_URL", "https://api.openai.com/v1")
    model: str = text("CHATKIT_MODEL", "gpt-4.1-mini")
    instructions: str = text("CHATKIT_INSTRUCTIONS", "You are a helpful assistant.")
    model_timeout: float = number("CHATKIT_MODEL_TIMEOUT", 60.0, minimum=1, maximum=600)
    model_max_retries: int = integer("CHATKIT_MODEL_MAX_RETRIES", 2, minimum=0, maximum=5)
    history_items: int = integer("CHATKIT_HISTORY_ITEMS", 30, minimum=1, maximum=100)
    tracing_enabled: bool = flag("CHATKIT_TRACING", False)
    domain_key: str | None = text("CHATKIT_DOMAIN_KEY")
    message_rate_limit: str = rate_limit("CHATKIT_MESSAGE_RATE_LIMIT", "30/minute;500/day")
    message_rate_limit_per_address: str = rate_limit("CHATKIT_MESSAGE_RATE_LIMIT_PER_ADDRESS", "120/minute;5000/day")
    read_rate_limit: str = rate_limit("CHATKIT_READ_RATE_LIMIT", "300/minute")
    read_rate_limit_per_address: str = rate_limit("CHATKIT_READ_RATE_LIMIT_PER_ADDRESS", "1200/minute")
    # package.module:name of the team's own Agents SDK agent
    agent: str | None = matching("CHATKIT_AGENT", AGENT_SPEC, "package.module:name of an Agent")
    auto_title: bool = flag("CHATKIT_AUTO_TITLE", True)
    title_model: str | None = text("CHATKIT_TITLE_MODEL")
    upload_max_bytes: int = integer(
        "CHATKIT_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1024, maximum=512 * 1024 * 1024
    )
    upload_types: tuple[str, ...] = content_types("CHATKIT_UPLOAD_TYPES")
    upload_folder: str | None = text("CHATKIT_UPLOAD_FOLDER")

    # Sessions (None: the hosted API's own default)
    session_expires_seconds: int | None = integer("CHATKIT_SESSION_EXPIRES_SECONDS", None, minimum=1, maximum=600)
    session_max_requests_per_minute: int | None = integer("CHATKIT_SESSION_MAX_REQUESTS_PER_MINUTE", None, minimum=1)
    file_upload_enabled: bool | None = flag("CHATKIT_FILE_UPLOAD_ENABLED", None)
    file_upload_max_files: int | None = integer("CHATKIT_FILE_UPLOAD_MAX_FILES", None, minimum=1)
    file_upload_max_file_size_mb: int | None = integer(
        "CHATKIT_FILE_UPLOAD_MAX_FILE_SIZE_MB", None, minimum=1, maximum=512
    )
    history_enabled: bool | None = flag("CHATKIT_HISTORY_ENABLED", None)
    history_recent_threads: int | None = integer("CHATKIT_HISTORY_RECENT_THREADS", None, minimum=1)
    automatic_thread_titling: bool | None = flag("CHATKIT_AUTOMATIC_THREAD_TITLING", None)
    allowed_state_variables: tuple[str, ...] = items("CHATKIT_ALLOWED_STATE_VARIABLES")
    session_rate_limit: str = rate_limit("CHATKIT_SESSION_RATE_LIMIT", "10/minute;100/hour")
    session_rate_limit_per_address: str = rate_limit("CHATKIT_SESSION_RATE_LIMIT_PER_ADDRESS", "60/minute;1000/hour")
    threads_rate_limit: str = rate_limit("CHATKIT_THREADS_RATE_LIMIT", "60/minute")
    threads_rate_limit_per_address: str = rate_limit("CHATKIT_THREADS_RATE_LIMIT_PER_ADDRESS", "120/minute;2000/hour")

    # Identity
    identity_mode: str = choice("CHATKIT_IDENTITY_MODE", "anonymous", IDENTITY_MODES)
    # Unset: __Host- prefixed when the cookie is always Secure (see _read_all).
    user_cookie_name: str = text("CHATKIT_USER_COOKIE_NAME", "chatkit_uid")
    cookie_samesite: str = choice("CHATKIT_COOKIE_SAMESITE", "Lax", SAMESITE_VALUES)
    cookie_max_age: int = integer("CHATKIT_COOKIE_MAX_AGE", 30 * 24 * 3600, minimum=60)
    jwt_secret: str | None = text("CHATKIT_JWT_SECRET", secret=True)
    jwt_public_key: str | None = text("CHATKIT_JWT_PUBLIC_KEY", secret=True)
    # Unset: RS256 and ES256 when only a public key is given (see _read_all).
    jwt_algorithms: tuple[str, ...] = items("CHATKIT_JWT_ALGORITHMS", ("HS256",))
    jwt_issuer: str | None = text("CHATKIT_JWT_ISSUER")
    jwt_audience: str | None = text("CHATKIT_JWT_AUDIENCE")
    user_header: str = text("CHATKIT_USER_HEADER", "X-Forwarded-User")
    user_id_hmac_key: str | None = text("CHATKIT_USER_ID_HMAC_KEY", secret=True)

    # Analytics and error reports
    analytics_max_event_bytes: int = integer("CHATKIT_ANALYTICS_MAX_EVENT_BYTES", 16 * 1024, minimum=256)
    analytics_max_batch_events: int = integer("CHATKIT_ANALYTICS_MAX_BATCH_EVENTS", 500, minimum=1, maximum=10000)
    analytics_store_client_address: bool = flag("CHATKIT_ANALYTICS_STORE_CLIENT_ADDRESS", False)
    analytics_spool_path: str | None = text("CHATKIT_ANALYTICS_SPOOL_PATH")
    analytics_retention_days: int = integer("CHATKIT_ANALYTICS_RETENTION_DAYS", 90, minimum=1)
    analytics_rate_limit: str = rate_limit("CHATKIT_ANALYTICS_RATE_LIMIT", "1200/minute")
    analytics_event_rate_limit: str = rate_limit("CHATKIT_ANALYTICS_EVENT_RATE_LIMIT", "3000/minute;30000/hour")
    admin_token: str | None = text("CHATKIT_ADMIN_TOKEN", secret=True)
    admin_auth_failure_limit: str = rate_limit("CHATKIT_ADMIN_AUTH_FAILURE_LIMIT", "10/minute;100/day")

    # Operations: GET /metrics (Prometheus), and where gunicorn's workers write their samples
    metrics_enabled: bool = flag("CHATKIT_METRICS", False)
    metrics_multiprocess_dir: str | None = text("PROMETHEUS_MULTIPROC_DIR")

    # Frontend helper
    example_page_enabled: bool | None = flag("CHATKIT_EXAMPLE_PAGE", None)

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


def variable_names() -> list[str]:
    """Every environment variable `Settings.from_env` reads."""
    return [f.metadata["var"] for f in fields(Settings) if "var" in f.metadata] + [WORKFLOW_ID_ALIAS]


def _read_all(r: _Reader) -> dict[str, Any]:
    """Every declared field, then the defaults that depend on another setting and the checks across settings."""
    v = {f.name: r.read(f) for f in fields(Settings) if "var" in f.metadata}
    production = v["env"] == "production"
    if not v["secret_key"]:
        if production:
            r.problem("SECRET_KEY is required (set CHATKIT_ENV=development to use a random per-process key)")
        v["secret_key"] = secrets.token_urlsafe(32)
        v["secret_key_generated"] = True
    if v["identity_mode"] == "jwt" and not (v["jwt_secret"] or v["jwt_public_key"]):
        r.problem("CHATKIT_IDENTITY_MODE=jwt needs CHATKIT_JWT_SECRET (HS256) or CHATKIT_JWT_PUBLIC_KEY (RS256/ES256)")
    if "jwt_algorithms" in r.defaulted and not v["jwt_secret"]:
        v["jwt_algorithms"] = ("RS256", "ES256")
    v["workflow_id"] = v["workflow_id"] or r.text(WORKFLOW_ID_ALIAS)
    # Unset: deployments that name a hosted workflow keep it; everyone else gets their own server.
    if "chatkit_mode" in r.defaulted and v["workflow_id"]:
        v["chatkit_mode"] = "hosted"
    if v["identity_mode"] == "header" and v["trusted_proxy_hops"] < 1:
        r.problem("CHATKIT_IDENTITY_MODE=header needs TRUSTED_PROXY_HOPS >= 1 (the header must come from your proxy)")
    if production:
        for name, key in (
            ("SECRET_KEY", "secret_key"),
            ("CHATKIT_ADMIN_TOKEN", "admin_token"),
            ("CHATKIT_JWT_SECRET", "jwt_secret"),
        ):
            if v[key] and len(v[key]) < MIN_SECRET_LENGTH:
                # A short secret can be guessed; the message never repeats the value.
                r.problem(
                    f"{name} must be at least {MIN_SECRET_LENGTH} characters in production; generate one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
    always_secure = production or v["cookie_samesite"] == "None"
    cookie_name = v["user_cookie_name"]
    # __Host-: a sibling subdomain cannot plant it (browsers refuse it with Domain, or without Secure).
    if "user_cookie_name" in r.defaulted and always_secure:
        v["user_cookie_name"] = "__Host-" + cookie_name
    elif cookie_name.startswith(("__Host-", "__Secure-")) and not always_secure:
        r.problem(
            f"CHATKIT_USER_COOKIE_NAME={cookie_name!r}: browsers keep a __Host-/__Secure- cookie only when it is "
            "Secure; use CHATKIT_ENV=production or CHATKIT_COOKIE_SAMESITE=None, or a name without the prefix"
        )
    return v


class _Reader:
    """Reads declared fields from a mapping, collecting problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []
        # Fields that took their declared default (unset, empty or invalid).
        self.defaulted: set[str] = set()

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def read(self, declared: Field[Any]) -> Any:
        """The field's value from its variable, or its default when the variable is unset, empty or invalid."""
        name = declared.metadata["var"]
        raw = self.text(name)
        if raw is not None:
            try:
                value = declared.metadata["parse"](raw)
            except _Invalid as invalid:
                self.problems.extend(invalid.problems)
            except ValueError:
                self.problem(f"{name}={raw!r} is not {declared.metadata['expected']}")
            else:
                if value != ():  # a list of nothing (",") counts as unset, like an empty value
                    return value
        self.defaulted.add(declared.name)
        return declared.default
