"""The two baselines over the same tools: a plain ReAct agent, and ReAct that sees the
budget message after every tool result (and is capped by it).

Both get every tool that may ever exist (a tool not available now refuses in its text), the
start values in the prompt and the goal: call ``assemble_trip``. The plain one runs under
`with_budget` with no limits and a blank message, so its spend is counted the same way while
nothing changes what it sees or may do.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agent_budget.tools.travel.domain import ASSEMBLE
from agent_budget.tools.travel.world import TravelWorld, snake


def react_prompt(world: TravelWorld, values: dict[str, str]) -> str:
    start = ", ".join(f"{snake(t)}={v!r}" for t, v in values.items())
    return (
        "You plan a trip by calling tools. Every tool returns a [ref=...] that later tools "
        f"take as input. Known values: {start}. Work through each part of the trip in order "
        f"({', '.join(world.scenario.subtasks)}), then call {ASSEMBLE}. Tools cost money: "
        "use the cheapest way."
    )


def react_graph(world: TravelWorld, model: Any) -> Any:
    """ReAct (`create_react_agent`) over every tool the scenario may ever have, not budgeted;
    its state also keeps which task a benchmark run belongs to."""
    from langgraph.prebuilt import create_react_agent
    from langgraph.prebuilt.chat_agent_executor import AgentState

    class ReactTripState(AgentState):
        trip_task: str

    names = [t.name for t in world.scenario.all_tools()]
    tools = world.langchain_tools(signals=False, names=names)
    values = world.scenario.start_values()
    return create_react_agent(
        model, tools, prompt=react_prompt(world, values), state_schema=ReactTripState
    )


def build_react(
    world: TravelWorld, model: Any, *, show_budget: bool, max_steps: int = 40
) -> tuple[Any, Any]:
    """(graph, budget): ReAct over the world's tools; ``show_budget`` adds the budget message
    and the scenario's USD cap, priced with the tools' prices at the start."""
    from agent_budget import Budget, with_budget

    names = [t.name for t in world.scenario.all_tools()]
    graph = react_graph(world, model)
    prices = {n: world.price(n) for n in names}
    if show_budget:
        budget = Budget(
            usd=world.scenario.budget,
            prices=prices,
            model_calls=max_steps,
            on_exhausted="finalize",
        )
    else:
        budget = Budget(prices=prices, model_calls=max_steps, message_template=" ")
    return with_budget(graph, budget, final_model=model), budget


def react_paid(world: TravelWorld) -> Decimal:
    return world.paid()
