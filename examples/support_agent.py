"""An example of a team's own agent: `CHATKIT_AGENT=examples.support_agent:agent` (or `:build` for the factory).

Three kinds of tools, each as ChatKit shows it:
- `lookup_order`, a function tool that runs here (ChatKit shows "Running lookup_order…" while it runs);
- `get_selection`, a client tool: the browser runs it (ChatKit's `onClientTool`) and its output goes back
  to the model through `threads.add_client_tool_output`;
- `offer_choices`, a widget with buttons; a click comes back as `threads.custom_action` and the agent
  hears it as hidden context on its next turn.
"""

from __future__ import annotations

from agents import Agent, RunContextWrapper, StopAtTools, function_tool
from chatkit.actions import ActionConfig
from chatkit.agents import AgentContext, ClientToolCall
from chatkit.widgets import Button, Card, Text

ORDERS = {"A1": "shipped on 2 December", "B2": "waiting for stock"}


@function_tool
async def lookup_order(ctx: RunContextWrapper[AgentContext], order_id: str) -> str:
    """Look up the status of an order by its id."""
    return f"Order {order_id}: {ORDERS.get(order_id, 'unknown order')}"


@function_tool
async def get_selection(ctx: RunContextWrapper[AgentContext]) -> str:
    """Ask the browser for the text the user has selected on the page."""
    ctx.context.client_tool_call = ClientToolCall(name="get_selection", arguments={"max_length": 500})
    return "asked the browser"


@function_tool
async def offer_choices(ctx: RunContextWrapper[AgentContext], question: str) -> str:
    """Show the user a yes/no question with buttons."""
    buttons = [
        Button(label=label, onClickAction=ActionConfig(type="choose", payload={"answer": label.lower()}))
        for label in ("Yes", "No")
    ]
    await ctx.context.stream_widget(Card(children=[Text(value=question), *buttons]))
    return "The choices are shown; wait for the user's click."


INSTRUCTIONS = (
    "You help customers with their orders. Use lookup_order for order questions, get_selection when the user "
    "refers to what they selected on the page, and offer_choices for yes/no questions."
)

agent = Agent(
    name="Support",
    instructions=INSTRUCTIONS,
    tools=[lookup_order, get_selection, offer_choices],
    # A client tool ends the run: the browser answers it, then the next turn continues.
    tool_use_behavior=StopAtTools(stop_at_tool_names=["get_selection"]),
)


def build(settings) -> Agent:
    """The same agent on the service's CHATKIT_MODEL: a factory may take the settings."""
    return agent.clone(model=settings.model)
