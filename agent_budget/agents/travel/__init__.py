"""The travel agent (the planner does the tool path, the model does language) and its two
ReAct baselines, over the priced travel tools of `agent_budget.tools.travel`.

    from agent_budget.agents.travel import build_travel_agent
    from agent_budget.tools.travel import Scenario, TravelWorld
    world = TravelWorld(Scenario.from_file("examples/travel/demo.yaml"))
    agent = build_travel_agent(world, resolve("local:smollm2-135m"))   # under with_budget
    state = agent.invoke({"messages": [("user", world.scenario.request)]})
    plan_json(state)                           # the execution, in the --execute shape

Here and not in ``tools/travel/``: an agent reads the live budget through `integrations/`,
which DESIGN.md's layers put above the tools. `bench` is the harness's ``travel`` task set
and the three agents it compares.
"""

from __future__ import annotations

from agent_budget.agents.travel.baselines import build_react, react_graph, react_prompt
from agent_budget.agents.travel.graph import (
    TripState,
    build_graph,
    build_problem_agent,
    build_travel_agent,
    itinerary,
    plan_json,
)

__all__ = [
    "TripState",
    "build_graph",
    "build_problem_agent",
    "build_react",
    "build_travel_agent",
    "itinerary",
    "plan_json",
    "react_graph",
    "react_prompt",
]
