"""Execution against the simulated environment: each event type, failures, replanning."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from planner_helpers import problem, tool

from agent_budget.planners import EventPastPlanEnd, InvalidProblem, PlanningWarning, execute

METHODS = pytest.mark.parametrize("method", ["exact", "cats"])

TOOLS = [
    tool("search", ["Query"], "Candidates", 1),
    tool("alt_search", ["Query"], "Candidates", 4),
    tool("select", ["Candidates"], "Choice", 2),
    tool("alt_select", ["Candidates"], "Choice", 3),
]


def run(events: list[dict[str, Any]], method: str = "exact", **extra: Any) -> Any:
    return execute(problem(["Query"], "Choice", TOOLS, events=events, **extra), method)


def names(result: Any) -> list[str]:
    return [call.tool for call in result.executed]


@METHODS
def test_no_events_executes_the_plan(method: str) -> None:
    r = run([], method)
    assert r.to_dict() == {
        "status": "ok",
        "steps": ["search", "select"],
        "cost": 3.0,
        "executed": [
            {"tool": "search", "cost": 1.0, "ok": True},
            {"tool": "select", "cost": 2.0, "ok": True},
        ],
        "paid": 3.0,
        "replans": 0,
        "goal_reached": True,
    }


@METHODS
def test_ban_tool_replans_to_the_next_best(method: str) -> None:
    r = run([{"after_step": 1, "type": "ban_tool", "tool": "select"}], method)
    assert names(r) == ["search", "alt_select"]
    assert (r.paid, r.replans, r.goal_reached) == (Decimal(4), 1, True)


@METHODS
def test_cost_change_mid_run(method: str) -> None:
    r = run([{"after_step": 1, "type": "cost_change", "tool": "select", "cost": 9}], method)
    assert names(r) == ["search", "alt_select"] and r.paid == Decimal(4)
    cheaper = run(
        [{"after_step": 0, "type": "cost_change", "tool": "alt_search", "cost": 0.5}], method
    )
    assert names(cheaper) == ["alt_search", "select"] and cheaper.paid == Decimal("2.5")
    assert cheaper.steps == ("search", "select")  # the first plan, made before the event


@METHODS
def test_invalidate_removes_then_adds(method: str) -> None:
    r = run(
        [
            {
                "after_step": 2,
                "type": "invalidate",
                "types": ["Candidates", "Choice"],
                "add_start": [],
            }
        ],
        method,
    )
    # After step 2 the goal is reached, the event fires, then the goal is gone: replan.
    assert names(r)[:2] == ["search", "select"]
    assert r.goal_reached and r.replans == 1
    assert names(r)[2:] == ["search", "select"]
    r = run(
        [
            {
                "after_step": 1,
                "type": "invalidate",
                "types": ["Candidates"],
                "add_start": ["Candidates"],
            }
        ],
        method,
    )
    assert names(r) == ["search", "select"] and r.replans == 1  # removed first, then added


@METHODS
def test_invalidate_with_new_start_types(method: str) -> None:
    tools = [*TOOLS, tool("from_style", ["Style"], "Choice", "0.5")]
    p = problem(
        ["Query"],
        "Choice",
        tools,
        events=[
            {"after_step": 1, "type": "invalidate", "types": ["Candidates"], "add_start": ["Style"]}
        ],
    )
    r = execute(p, method)
    assert names(r) == ["search", "from_style"] and r.paid == Decimal("1.5")


@METHODS
def test_tools_change_adds_and_removes(method: str) -> None:
    r = run(
        [
            {
                "after_step": 1,
                "type": "tools_change",
                "remove": ["select", "alt_select"],
                "add": [
                    {"name": "new_select", "inputs": ["Candidates"], "output": "Choice", "cost": 7}
                ],
            }
        ],
        method,
    )
    assert names(r) == ["search", "new_select"] and r.paid == Decimal(8)


@METHODS
def test_events_of_one_step_apply_together_in_file_order(method: str) -> None:
    events = [
        {"after_step": 1, "type": "ban_tool", "tool": "select"},
        {
            "after_step": 1,
            "type": "tools_change",
            "add": [{"name": "select", "inputs": ["Candidates"], "output": "Choice", "cost": 5}],
        },
        {"after_step": 1, "type": "cost_change", "tool": "select", "cost": 1},
    ]
    r = run(events, method)
    assert names(r) == ["search", "select"] and r.paid == Decimal(2)
    assert r.replans == 1  # one replan for the whole group


def test_event_naming_an_already_removed_tool_is_ignored_with_a_warning() -> None:
    events = [
        {"after_step": 0, "type": "ban_tool", "tool": "alt_search"},
        {"after_step": 1, "type": "cost_change", "tool": "alt_search", "cost": 0},
        {"after_step": 1, "type": "ban_tool", "tool": "alt_search"},
    ]
    with pytest.warns(PlanningWarning, match="already removed"):
        r = run(events)
    assert r.goal_reached and len(r.warnings) == 2
    assert "events.1 (cost_change) names tool 'alt_search'" in r.warnings[0]


@METHODS
def test_event_leaving_no_way_is_unreachable(method: str) -> None:
    r = run(
        [
            {"after_step": 1, "type": "ban_tool", "tool": "select"},
            {"after_step": 1, "type": "ban_tool", "tool": "alt_select"},
        ],
        method,
    )
    d = r.to_dict()
    assert d["status"] == "unreachable" and d["goal_reached"] is False
    assert d["executed"] == [{"tool": "search", "cost": 1.0, "ok": True}]
    assert "after 1 calls" in d["reason"] and "cannot be produced" in d["reason"]


def test_remaining_budget_is_what_replanning_may_spend() -> None:
    r = run([{"after_step": 1, "type": "cost_change", "tool": "select", "cost": 9}], budget=4)
    assert names(r) == ["search", "alt_select"] and r.paid == Decimal(4)
    r = run([{"after_step": 1, "type": "ban_tool", "tool": "select"}], budget="3.99")
    assert r.status == "unreachable"
    assert r.reason == "after 1 calls: cheapest plan costs 3 > budget 2.99"


def test_remaining_steps_bound_replanning() -> None:
    tools = [*TOOLS, tool("direct", ["Query"], "Choice", 20)]
    p = problem(
        ["Query"],
        "Choice",
        tools,
        max_steps=2,
        events=[{"after_step": 1, "type": "invalidate", "types": ["Candidates"]}],
    )
    r = execute(p)
    assert names(r) == ["search", "direct"]


def test_infeasible_from_the_start_executes_nothing() -> None:
    r = run([], budget=2)
    assert r.to_dict() == {
        "status": "infeasible",
        "steps": [],
        "cost": None,
        "reason": "cheapest plan costs 3 > budget 2",
        "executed": [],
        "paid": 0.0,
        "replans": 0,
        "goal_reached": False,
    }


def test_event_past_the_plans_end_is_a_clear_error() -> None:
    with pytest.raises(
        EventPastPlanEnd, match="after_step 5, but the plan reached the goal after 2 calls"
    ) as caught:
        run([{"after_step": 5, "type": "ban_tool", "tool": "select"}])
    assert isinstance(caught.value, InvalidProblem)


def test_event_right_after_the_last_call_is_fine() -> None:
    assert run([{"after_step": 2, "type": "ban_tool", "tool": "select"}]).goal_reached


FLAKY = [tool("flaky", ["A"], "G", 1, failure_rate=0.5), tool("steady", ["A"], "G", "1.6")]


def test_failures_are_paid_and_replanned_reproducibly() -> None:
    p = problem(["A"], "G", FLAKY)
    runs = [execute(p, "exact", seed=s) for s in range(40)]
    assert all(r.goal_reached for r in runs)
    failed = [r for r in runs if not r.executed[0].ok]
    assert failed, "with rate 0.5, some of 40 seeds must fail"
    for r in failed:
        assert r.replans == sum(not c.ok for c in r.executed)
        assert r.paid == sum((c.cost for c in r.executed), Decimal(0))
    assert execute(p, "exact", seed=3).to_dict() == execute(p, "exact", seed=3).to_dict()
    # cats prices the failures in: expected 2 for flaky, 1.6 for steady.
    assert [c.tool for c in execute(p, "cats", seed=0).executed] == ["steady"]


def test_failures_never_overspend_the_budget() -> None:
    p = problem(["A"], "G", [tool("flaky", ["A"], "G", 1, failure_rate=0.7)], budget=3)
    for seed in range(30):
        r = execute(p, "exact", seed=seed)
        assert r.paid <= Decimal(3)
        assert r.goal_reached or r.status == "unreachable"
