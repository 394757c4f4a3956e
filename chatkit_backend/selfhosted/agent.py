"""The Agents SDK side: one OpenAI client per worker, the agent, and how a run is configured.

Everything here is built from `Settings` on the worker's event loop (the client's connection pool
belongs to that loop); nothing reads the environment. Tracing stays off unless CHATKIT_TRACING is
set: it would send every conversation to OpenAI's tracing endpoint with the API key.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents import Agent, RunConfig, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI

from chatkit_backend.config import Settings


@dataclass
class AgentRuntime:
    """What one worker needs to run its agent: the agent, the run configuration and the client to close."""

    agent: Agent
    run_config: RunConfig
    client: AsyncOpenAI

    async def close(self) -> None:
        await self.client.close()


def build_agent(settings: Settings) -> Agent:
    """The default agent: CHATKIT_MODEL with CHATKIT_INSTRUCTIONS, no tools."""
    return Agent(name="Assistant", instructions=settings.instructions, model=settings.model)


def build_runtime(settings: Settings) -> AgentRuntime:
    """Create the client, provider and agent. Call it on the event loop that will use them."""
    set_tracing_disabled(not settings.tracing_enabled)
    client = AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        organization=settings.openai_organization,
        project=settings.openai_project,
        timeout=settings.model_timeout,
        max_retries=settings.model_max_retries,
    )
    run_config = RunConfig(
        model_provider=OpenAIProvider(openai_client=client),
        tracing_disabled=not settings.tracing_enabled,
    )
    return AgentRuntime(agent=build_agent(settings), run_config=run_config, client=client)
