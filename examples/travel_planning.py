"""Plan a whole trip within a budget: the travel agent on the embedded on-device model.

    python examples/travel_planning.py                      # the built-in scenario
    python examples/travel_planning.py examples/travel/demo.yaml

The same as `agent-budget demo travel`; the code below is what it does, in short.
"""

from __future__ import annotations

import sys

from agent_budget import Budget, BudgetTracker
from agent_budget.agents.travel import build_travel_agent, plan_json
from agent_budget.demos.travel import demo_scenario
from agent_budget.models import resolve
from agent_budget.tools.travel import Scenario, TravelWorld, optimal_run

scenario = Scenario.from_file(sys.argv[1]) if len(sys.argv) > 1 else demo_scenario()
world = TravelWorld(scenario)  # this run's tools, prices and scheduled events
budget = Budget(usd=scenario.budget)
tracker = BudgetTracker(budget)
agent = build_travel_agent(world, resolve("local:smollm2-135m", n_ctx=2048), budget)
state = agent.invoke(
    {"messages": [("user", scenario.request)]}, {"configurable": {"budget_tracker": tracker}}
)
print(state["messages"][-1].content)
execution = plan_json(state)
extra = execution.get("optional_paid") or 0
print(f"paid ${execution['paid']:.2f} of ${scenario.budget} in {len(execution['executed'])} calls")
print(f"optional refinements: ${extra:.2f}; skipped: {execution.get('skipped_optional') or []}")
print(f"the cheapest possible with the same events: ${optimal_run(scenario).paid}")
print(tracker.message())
