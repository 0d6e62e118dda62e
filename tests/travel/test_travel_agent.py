"""The travel agent end to end on the real embedded model (SmolLM2-135M through llama.cpp):
one scenario per event kind completes within budget, never calls a banned tool after the
ban, and pays exactly what the replanning exact planner pays."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from agent_budget import Budget, BudgetTracker
from agent_budget.agents.travel.graph import build_travel_agent, plan_json
from agent_budget.tools.travel import EVENT_KINDS, TravelWorld, generate_scenario, optimal_run

pytestmark = pytest.mark.local_model
_model: dict[str, Any] = {}


def model() -> Any:
    """One model for every test here (the GGUF is loaded once)."""
    if "m" not in _model:
        from agent_budget.models import resolve

        _model["m"] = resolve("local:smollm2-135m", max_tokens=160, temperature=0, n_ctx=2048)
    return _model["m"]


def run(scenario: Any, **options: Any) -> tuple[dict[str, Any], TravelWorld, BudgetTracker]:
    world = TravelWorld(scenario)
    budget = Budget(usd=scenario.budget)
    tracker = BudgetTracker(budget)
    agent = build_travel_agent(world, model(), budget, **options)
    state = agent.invoke(
        {"messages": [("user", scenario.request)]},
        {"configurable": {"budget_tracker": tracker}, "recursion_limit": 40},
    )
    return state, world, tracker


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_each_event_kind_is_replanned_to_exactly_the_optimum(kind: str) -> None:
    scenario = generate_scenario(31, event=kind, depth=(1, 2))
    best = optimal_run(scenario)
    state, world, tracker = run(scenario, language="plan-only")
    execution = plan_json(state)
    assert execution["goal_reached"], execution
    assert [c["tool"] for c in execution["executed"]] == [c.tool for c in best.executed]
    assert Decimal(str(execution["paid"])) == best.paid == world.paid()
    assert tracker.spent.usd == best.paid <= scenario.budget  # the budget paid for exactly it
    # the model reads what the request leaves open, and is not paid when nothing is
    asked = state["trip"]["model_read"]
    assert tracker.spent.model_calls == (0 if isinstance(asked, str) else 1)
    event = scenario.events[0]
    if kind == "ban_tool":
        after = [c.tool for c in world.calls[event.after_step :]]
        assert event.tool not in after
    if kind in ("preference_change", "tools_change"):
        assert state["trip"]["changes"], "the agent said it replanned"


def test_full_run_picks_and_writes_and_a_tight_budget_skips_the_model_picks() -> None:
    scenario = generate_scenario(32, event="cost_change", depth=1)
    state, _, tracker = run(scenario)
    trip = state["trip"]
    assert trip["itinerary"] and len(trip["itinerary"]) == trip["days"]
    city = trip["picks"]["location"]["name"]
    assert all(r.get("city", city) == city for r in trip["picks"].values())
    calls_normal = tracker.spent.model_calls
    tight = scenario.model_copy(update={"budget": optimal_run(scenario).paid + Decimal("0.5")})
    state, _, tracker = run(tight)
    assert state["trip"]["regime"] in ("LOW", "CRITICAL")
    assert state["trip"]["picked_by"] == "top-ranked"
    assert tracker.spent.model_calls < calls_normal or trip["picked_by"] == "top-ranked"
    assert tracker.spent.usd <= tight.budget


def test_a_budget_below_the_cheapest_plan_is_refused_before_any_call() -> None:
    scenario = generate_scenario(33)
    low = scenario.model_copy(update={"budget": optimal_run(scenario).paid - Decimal("0.01")})
    state, world, tracker = run(low, language="plan-only")
    assert state["trip"]["status"] == "infeasible"
    assert world.calls == [] and tracker.spent.usd == 0
    assert "nothing was spent" in state["messages"][-1].content
