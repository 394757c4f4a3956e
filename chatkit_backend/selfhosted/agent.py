"""The Agents SDK side: one OpenAI client per worker, the agent, and how a run is configured.

Everything here is built from `Settings` on the worker's event loop (the client's connection pool
belongs to that loop); nothing reads the environment. Tracing stays off unless CHATKIT_TRACING is
set: it would send every conversation to OpenAI's tracing endpoint with the API key.
The agent is the team's own when CHATKIT_AGENT names one (`load_agent`), else CHATKIT_MODEL with
CHATKIT_INSTRUCTIONS.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from agents import Agent, RunConfig, RunContextWrapper, RunHooks, Tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider
from chatkit.types import ProgressUpdateEvent
from openai import AsyncOpenAI

from chatkit_backend.config import ConfigError, Settings


@dataclass
class AgentRuntime:
    """What one worker needs to run its agent: the agent, the run configuration and the client to close."""

    agent: Agent
    run_config: RunConfig
    client: AsyncOpenAI
    hooks: RunHooks

    async def close(self) -> None:
        await self.client.close()


def build_agent(settings: Settings) -> Agent:
    """The default agent: CHATKIT_MODEL with CHATKIT_INSTRUCTIONS, no tools."""
    return Agent(name="Assistant", instructions=settings.instructions, model=settings.model)


def load_agent(settings: Settings) -> Agent:
    """The agent CHATKIT_AGENT names (an `Agent`, or a function of no argument or of the settings returning one).

    Raises ConfigError naming CHATKIT_AGENT when it cannot be imported or is not an agent; without the
    setting, the default agent. An agent without a model gets CHATKIT_MODEL.
    """
    spec = settings.agent
    if spec is None:
        return build_agent(settings)
    module_name, _, path = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure of the team's module is a configuration problem
        raise _agent_problem(spec, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    for part in path.split("."):
        if not hasattr(target, part):
            raise _agent_problem(spec, f"{module_name} has no {path}")
        target = getattr(target, part)
    if not isinstance(target, Agent) and callable(target) and not isinstance(target, type):
        try:
            target = target(settings) if inspect.signature(target).parameters else target()
        except Exception as exc:  # noqa: BLE001
            raise _agent_problem(spec, f"calling {path} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(target, Agent):
        raise _agent_problem(
            spec, f"{path} is a {type(target).__name__}, not an Agents SDK Agent or a function returning one"
        )
    return target if target.model is not None else target.clone(model=settings.model)


def _agent_problem(spec: str, reason: str) -> ConfigError:
    return ConfigError([f"CHATKIT_AGENT={spec!r}: {reason}"])


class ToolProgress(RunHooks):
    """Shows each function tool the agent runs as ChatKit's progress line ("Running lookup_order…")."""

    async def on_tool_start(self, context: RunContextWrapper, agent: Agent, tool: Tool) -> None:
        chatkit_context = getattr(context, "context", None)
        if hasattr(chatkit_context, "stream"):
            await chatkit_context.stream(ProgressUpdateEvent(icon="bolt", text=f"Running {tool.name}…"))


def build_runtime(settings: Settings, agent: Agent | None = None) -> AgentRuntime:
    """Create the client, provider and agent (`agent`, or the settings' one). Call it on the loop that uses them."""
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
    return AgentRuntime(agent=agent or load_agent(settings), run_config=run_config, client=client, hooks=ToolProgress())
