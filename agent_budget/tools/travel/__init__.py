"""Priced travel tools with dynamic events: the domain, the offline catalogs, the scenario
generator and one run's world. The agent that plans a whole trip with them is
`agent_budget.agents.travel` (an agent imports `integrations/`, which the tools may not).

    from agent_budget.agents.travel import build_travel_agent
    from agent_budget.tools.travel import Scenario, TravelWorld
    scenario = Scenario.from_file("examples/travel/demo.yaml")   # or generate_scenario(seed)
    world = TravelWorld(scenario)                                 # one run's tools and events
    agent = build_travel_agent(world, resolve("local:smollm2-135m"))
    agent.invoke({"messages": [("user", scenario.request)]})

`world.langchain_tools()` are plain LangChain tools (metadata ``input_types``,
``output_type``, ``cost``) usable with `plan_tool`, `planner_node` or any agent.
"""

from agent_budget.tools.travel.backend import OfflineBackend, TravelBackend, catalog
from agent_budget.tools.travel.generate import draw_event, generate_scenario, optimal_run
from agent_budget.tools.travel.scenario import EVENT_KINDS, InvalidScenario, Scenario, ToolSpec
from agent_budget.tools.travel.world import TravelWorld

__all__ = [
    "EVENT_KINDS",
    "InvalidScenario",
    "OfflineBackend",
    "Scenario",
    "ToolSpec",
    "TravelBackend",
    "TravelWorld",
    "catalog",
    "draw_event",
    "generate_scenario",
    "optimal_run",
]
