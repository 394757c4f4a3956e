"""Self-hosted ChatKit: this service is the ChatKit server (`POST /api/chatkit`), the agent runs here.

`init_app(app)` registers the route and, in self-hosted mode, a `SelfHostedChatKit` in
`app.extensions`. The package `openai-chatkit` and the Agents SDK (~3 s to import) load on first use
or in `warm()`, which gunicorn calls once per worker before it takes requests; hosted mode never
imports them.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from chatkit_backend.config import Settings
from chatkit_backend.db import EXTENSION_KEY as DB_EXTENSION_KEY
from chatkit_backend.db import Database
from chatkit_backend.errors import ApiError
from chatkit_backend.metrics import EXTENSION_KEY as METRICS_EXTENSION_KEY
from chatkit_backend.selfhosted.bridge import AsyncBridge

if TYPE_CHECKING:
    from chatkit_backend.metrics import Metrics
    from chatkit_backend.selfhosted.server import BackendChatKitServer

EXTENSION_KEY = "chatkit_selfhosted"

log = logging.getLogger(__name__)

# One event loop per process, shared by every app the process builds (tests build many).
bridge = AsyncBridge()


class SelfHostedChatKit:
    """The app's ChatKit server, built on first use in each process (after gunicorn's fork)."""

    def __init__(
        self, settings: Settings, database: Database, agent: Any = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.agent = agent  # the team's agent, loaded (and checked) at start; None: the default one
        self.metrics = metrics
        self.bridge = bridge
        self._server: BackendChatKitServer | None = None
        self._lock = threading.Lock()

    @property
    def server(self) -> BackendChatKitServer:
        if self._server is None:
            with self._lock:
                if self._server is None:
                    self._server = self.bridge.run(self._build())
        return self._server

    async def _build(self) -> BackendChatKitServer:
        from chatkit_backend.selfhosted.agent import build_runtime
        from chatkit_backend.selfhosted.server import BackendChatKitServer
        from chatkit_backend.selfhosted.store import SqlStore
        from chatkit_backend.selfhosted.uploads import blob_store

        blobs = blob_store(self.settings, self.database)
        return BackendChatKitServer(
            SqlStore(self.database, blobs), build_runtime(self.settings, self.agent), self.settings, blobs, self.metrics
        )

    def warm(self) -> None:
        """Import the packages, build the server, start the event loop and run one throwaway turn now.

        The turn (a canned model stream, a throwaway SQLite file) pays the first answer's lazy imports and
        schema building here, not in a user's first conversation (measured: 1.5-3.7 s before, see warmup.py).
        """
        from chatkit_backend.selfhosted.warmup import warm_turn

        _ = self.server
        try:
            self.bridge.run(warm_turn(self.settings))
        except Exception:  # a slower first answer is no reason to refuse to start
            log.warning("the ChatKit warm-up turn failed; the first answer will be slower", exc_info=True)

    def close(self) -> None:
        """Close the model client's connections (tests build and drop many apps)."""
        if self._server is not None:
            self.bridge.run(self._server.close())
            self._server = None


class _NotFoundIsNoError(logging.Filter):
    """ChatKit logs a traceback for every unknown thread; the route answers those 404, so they are no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return type(error).__name__ != "NotFoundError"


def _quiet_libraries() -> None:
    # ChatKit logs every request and the HTTP client every model call at INFO: a line per call, no news.
    for name in ("chatkit", "openai", "openai.agents", "httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    chatkit_log = logging.getLogger("chatkit")
    if not any(isinstance(f, _NotFoundIsNoError) for f in chatkit_log.filters):
        chatkit_log.addFilter(_NotFoundIsNoError())


def get_chatkit() -> SelfHostedChatKit:
    """The current app's self-hosted ChatKit; 503 `not_configured` in hosted mode or without OPENAI_API_KEY."""
    chatkit: SelfHostedChatKit | None = current_app.extensions.get(EXTENSION_KEY)
    if chatkit is None:
        settings = current_app.config["SETTINGS"]
        if settings.self_hosted:
            message = (
                "The ChatKit server is not configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for another server)."
            )
        else:
            message = (
                "This server serves hosted ChatKit sessions (CHATKIT_MODE=hosted); set CHATKIT_MODE=self_hosted "
                "to serve ChatKit's protocol here."
            )
        raise ApiError("not_configured", message, 503)
    return chatkit


def init_app(app: Flask) -> None:
    """Register `POST /api/chatkit`; in self-hosted mode with a key, create the app's ChatKit server."""
    from chatkit_backend.selfhosted.routes import bp

    settings: Settings = app.config["SETTINGS"]
    agent = None
    if settings.self_hosted and settings.agent:
        from chatkit_backend.selfhosted.agent import load_agent

        agent = load_agent(settings)  # a CHATKIT_AGENT that is no agent stops the start (ConfigError)
    if settings.self_hosted and settings.openai_api_key:
        _quiet_libraries()
        metrics = app.extensions.get(METRICS_EXTENSION_KEY)
        app.extensions[EXTENSION_KEY] = SelfHostedChatKit(settings, app.extensions[DB_EXTENSION_KEY], agent, metrics)
    app.register_blueprint(bp)
