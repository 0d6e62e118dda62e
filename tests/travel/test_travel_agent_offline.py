"""The travel agent's tool path without a language model (a fake chat model at the network
edge that cannot produce the JSON, so the agent keeps what the request states): every event
kind is replanned by `planner_node` itself, and optional refinements follow the regime that
counts the plan's reserved money."""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, ToolCallingFake

from agent_budget import Budget, BudgetTracker
from agent_budget.agents.travel.graph import build_travel_agent, plan_json
from agent_budget.tools.travel import EVENT_KINDS, TravelWorld, generate_scenario, optimal_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def run(scenario: Any, **options: Any) -> tuple[dict[str, Any], TravelWorld, BudgetTracker]:
    world = TravelWorld(scenario)
    budget = Budget(usd=scenario.budget, model_prices={FAKE_MODEL: FAKE_PRICE})
    tracker = BudgetTracker(budget)
    agent = build_travel_agent(world, ToolCallingFake(), budget, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = agent.invoke(
            {"messages": [("user", scenario.request)]},
            {"configurable": {"budget_tracker": tracker}, "recursion_limit": 40},
        )
    return state, world, tracker


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("seed", [5, 6])
def test_one_planner_run_replans_every_event_kind_to_the_optimum(kind: str, seed: int) -> None:
    scenario = generate_scenario(seed, event=kind, depth=(0, 3))
    best = optimal_run(scenario)
    state, world, tracker = run(scenario, language="plan-only")
    execution = plan_json(state)
    assert [c["tool"] for c in execution["executed"]] == [c.tool for c in best.executed]
    assert execution["goal_reached"] and execution["replans"] >= 1
    assert world.paid() == best.paid == Decimal(str(execution["paid"]))
    assert scenario.budget is not None and tracker.spent.usd <= scenario.budget
    # one planner run: the node replanned itself (no agent-side loop around it)
    plans = [m for m in state["messages"] if "agent_budget_plan" in (m.response_metadata or {})]
    assert len(plans) == 1
    if kind in ("preference_change", "tools_change"):
        assert state["trip"]["changes"]
    if kind == "ban_tool":
        event = scenario.events[0]
        assert event.tool not in [c.tool for c in world.calls[event.after_step :]]


def test_optional_refinements_run_with_room_and_are_skipped_when_the_plan_holds_most() -> None:
    scenario = generate_scenario(9, depth=1)
    best = optimal_run(scenario)
    assert scenario.extras and all(e.steps == ("read_reviews",) for e in scenario.extras)
    rich = scenario.model_copy(update={"budget": best.paid * 10})
    state, world, tracker = run(rich, language="plan-only", optional=True)
    execution = plan_json(state)
    called = [c["tool"] for c in execution["optional"]]
    assert called == [e.name for e in scenario.extras]  # HIGH all along: every extra
    assert [c["tool"] for c in execution["executed"]] == [c.tool for c in best.executed]
    assert world.paid() == best.paid + sum(e.cost for e in scenario.extras)
    assert 0 <= tracker.spent.usd - world.paid() < Decimal("0.001")  # the rest: model tokens
    # Tight: the plan reserves ~80% before its first call. Counting commits only, the first
    # extra would be decided at HIGH; counting the reservation it is LOW: all are skipped.
    tight = scenario.model_copy(update={"budget": best.paid * Decimal("1.25")})
    state, world, tracker = run(tight, language="plan-only", optional=True)
    execution = plan_json(state)
    assert execution["optional"] == []
    assert len(execution["skipped_optional"]) == len(scenario.extras)
    assert all("regime LOW" in s or "regime CRITICAL" in s for s in execution["skipped_optional"])
    assert world.paid() == best.paid and tracker.spent.usd <= tight.budget


def test_plan_only_runs_no_extras_unless_asked() -> None:
    scenario = generate_scenario(9, depth=1)
    state, world, _ = run(
        scenario.model_copy(update={"budget": Decimal(1000)}), language="plan-only"
    )
    assert "optional" not in plan_json(state) and not any(c.optional for c in world.calls)


def test_the_model_is_asked_only_for_what_the_request_leaves_open() -> None:
    from agent_budget.tools.travel.request import preference_schema, read_request

    stated = read_request("3 days in a historic city in May, mid-range hotel, vegetarian food")
    schema = preference_schema(("location", "accommodation", "dining"), stated)
    assert schema is not None and sorted(schema.model_fields) == ["dining_tier", "location_tier"]
    scenario = generate_scenario(1003)  # its request names every preference
    assert preference_schema(scenario.subtasks, read_request(scenario.request)) is None
    state, _, tracker = run(scenario, language="plan-only")
    assert tracker.spent.model_calls == 0 and "not needed" in state["trip"]["model_read"]
    assert plan_json(state)["goal_reached"]
