"""`TurnRecorder`: the figures of one model turn (tokens, time to first token, duration, error) into `chatkit_turns`.

A turn is one `respond()`: every model request of the run, tool calls included. `respond()` calls
`observe()` for each event it streams and `save()` once at the end; nothing else of it changes. With
CHATKIT_METRICS on, `save()` also hands the same figures to the Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from chatkit_backend.db import Database
from chatkit_backend.selfhosted.models import TURNS

log = logging.getLogger(__name__)

CANCELLED = "cancelled"  # the browser left; not a model error


def error_kind(error: BaseException) -> str:
    """A short, stable name for why a turn failed (the admin summary counts them; the log has the details)."""
    import openai

    if isinstance(error, openai.RateLimitError):
        return "rate_limited"
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "unreachable"
    if isinstance(error, openai.APIStatusError):
        return f"status_{error.status_code}"
    if isinstance(error, openai.APIError):
        return "api_error"
    return type(error).__name__[:40]


def model_name(agent: Any) -> str | None:
    model = getattr(agent, "model", None)
    return model if isinstance(model, str) or model is None else getattr(model, "model", type(model).__name__)


class TurnRecorder:
    """Times one turn from its start; `save()` writes its row with the run's token usage."""

    def __init__(self, database: Database, thread_id: str, owner: str, model: str | None, metrics: Any = None) -> None:
        self.database = database
        self.metrics = metrics
        self.row: dict[str, Any] = {
            "thread_id": thread_id,
            "owner": owner,
            "model": model[:255] if model else None,
            "started_at": datetime.now(UTC),
        }
        self._started = time.monotonic()
        self.first_token_ms: int | None = None

    def observe(self, event: Any) -> None:
        """Note the first text the user sees (ChatKit's first assistant text delta)."""
        if self.first_token_ms is None and getattr(getattr(event, "update", None), "type", None) == (
            "assistant_message.content_part.text_delta"
        ):
            self.first_token_ms = round((time.monotonic() - self._started) * 1000)

    async def save(self, usage: Any, error: str | None = None) -> None:
        """Write the turn; a failure to write is logged, never shown to the user."""
        row = {
            **self.row,
            "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
            "first_token_ms": self.first_token_ms,
            "duration_ms": round((time.monotonic() - self._started) * 1000),
            "error": error,
        }
        if self.metrics is not None:
            self._report(row)
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self.database.write, lambda connection: connection.execute(insert(TURNS).values(**row))
            )
        except Exception as exc:  # noqa: BLE001 - the figures must never cost the user their answer
            log.warning("could not record a turn: %s", type(exc).__name__, extra={"thread_id": row["thread_id"]})

    def _report(self, row: dict[str, Any]) -> None:
        if row["first_token_ms"] is not None:
            self.metrics.model_first_token(row["first_token_ms"] / 1000)
        self.metrics.model_tokens(row["input_tokens"], row["output_tokens"])
        if row["error"] not in (None, CANCELLED):
            self.metrics.model_error(row["error"])
