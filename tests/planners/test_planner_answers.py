"""Known optimal answers on hand-built problems, for both planners."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from planner_helpers import brute_force, problem, replay, tool

from agent_budget.planners import Limits, PlannerGaveUp, exact_plan, plan
from agent_budget.planners.generate import generate_problem

METHODS = pytest.mark.parametrize("method", ["exact", "cats"])

CHAIN = [
    tool("search", ["Query"], "Candidates", 1),
    tool("refine", ["Candidates"], "Shortlist", 2),
    tool("select", ["Shortlist", "Query"], "Choice", 3),
]


@METHODS
def test_composite_cheaper_than_its_parts(method: str) -> None:
    p = problem(["Query"], "Choice", [*CHAIN, tool("one_shot", ["Query"], "Choice", "5.99")])
    r = plan(p, method)
    assert (r.status, r.steps, r.cost) == ("ok", ("one_shot",), Decimal("5.99"))


@METHODS
def test_composite_dearer_than_its_parts(method: str) -> None:
    p = problem(["Query"], "Choice", [*CHAIN, tool("one_shot", ["Query"], "Choice", "6.01")])
    r = plan(p, method)
    assert (r.steps, r.cost) == (("search", "refine", "select"), Decimal(6))


@METHODS
def test_partial_composite_mixes_with_the_chain(method: str) -> None:
    p = problem(["Query"], "Choice", [*CHAIN, tool("search_refine", ["Query"], "Shortlist", 2.5)])
    r = plan(p, method)
    assert (r.steps, r.cost) == (("search_refine", "select"), Decimal("5.5"))


@METHODS
def test_equal_cost_prefers_fewer_calls(method: str) -> None:
    p = problem(["Query"], "Choice", [*CHAIN, tool("zz_one_shot", ["Query"], "Choice", 6)])
    assert plan(p, method).steps == ("zz_one_shot",)


@METHODS
def test_equal_cost_and_calls_prefers_smallest_name_sequence(method: str) -> None:
    p = problem(
        ["A", "B"],
        "G",
        [
            tool("y_from_b", ["B"], "Y", 1),
            tool("x_from_a", ["A"], "X", 1),
            tool("goal", ["X", "Y"], "G", 1),
            tool("b_route", ["A"], "Z", 1),
            tool("c_route", ["Z", "B"], "W", 1),
            tool("goal2", ["W"], "G", 1),
        ],
    )
    r = plan(p, method)
    # Both plans cost 3 in 3 calls; ("b_route", ...) < ("x_from_a", ...).
    assert r.steps == ("b_route", "c_route", "goal2")
    p2 = problem(
        ["A", "B"],
        "G",
        [
            tool("y_from_b", ["B"], "Y", 1),
            tool("x_from_a", ["A"], "X", 1),
            tool("goal", ["X", "Y"], "G", 1),
        ],
    )
    assert plan(p2, method).steps == ("x_from_a", "y_from_b", "goal")


@METHODS
def test_cycles_are_harmless(method: str) -> None:
    p = problem(
        ["A"],
        "D",
        [
            tool("a_to_b", ["A"], "B", 1),
            tool("b_to_a", ["B"], "A", 0),
            tool("b_to_c", ["B"], "C", 1),
            tool("c_to_b", ["C"], "B", 0),
            tool("c_to_d", ["C"], "D", 1),
            tool("loop_x", ["X"], "Y", 0),
            tool("loop_y", ["Y"], "X", 0),
            tool("x_to_d", ["X"], "D", 0),
        ],
    )
    r = plan(p, method)
    assert (r.steps, r.cost) == (("a_to_b", "b_to_c", "c_to_d"), Decimal(3))


@METHODS
def test_unreachable_goal_is_infeasible_with_the_reason(method: str) -> None:
    p = problem(["A"], "G", [tool("a_to_b", ["A"], "B", 1), tool("g", ["B", "Missing"], "G", 1)])
    r = plan(p, method)
    assert r.status == "infeasible" and r.cost is None and r.steps == ()
    assert "cannot be produced" in (r.reason or "")
    assert r.to_dict() == {"status": "infeasible", "steps": [], "cost": None, "reason": r.reason}


@METHODS
@pytest.mark.parametrize(
    ("budget", "status"), [("5.99", "infeasible"), ("6", "ok"), ("6.00", "ok"), ("100", "ok")]
)
def test_budget_just_below_and_at_the_optimum(method: str, budget: str, status: str) -> None:
    p = problem(["Query"], "Choice", CHAIN, budget=Decimal(budget))
    r = plan(p, method)
    assert r.status == status
    if status == "infeasible":
        assert r.reason == "cheapest plan costs 6 > budget 5.99"
    else:
        assert r.cost == Decimal(6)


@METHODS
def test_decimal_drift_never_makes_a_fitting_plan_infeasible(method: str) -> None:
    # 0.1 + 0.2 == 0.30000000000000004 in floats, > 0.3.
    text = (
        '{"start": [], "goal": "G", "budget": 0.3, "tools": ['
        '{"name": "a", "output": "A", "cost": 0.1},'
        '{"name": "b", "inputs": ["A"], "output": "G", "cost": 0.2}]}'
    )
    r = plan(text, method)
    assert (r.status, r.cost) == ("ok", Decimal("0.3"))
    assert r.to_dict()["cost"] == 0.3
    floats = problem([], "G", [tool("a", [], "A", 0.1), tool("b", ["A"], "G", 0.2)], budget=0.3)
    assert plan(floats, method).status == "ok"
    assert (
        plan(text, method, budget=Decimal("0.29")).reason == "cheapest plan costs 0.3 > budget 0.29"
    )


@METHODS
def test_zero_cost_tools(method: str) -> None:
    p = problem(
        ["A"],
        "G",
        [
            tool("free1", ["A"], "B", 0),
            tool("free2", ["B"], "C", 0),
            tool("free3", ["C"], "G", 0),
            tool("paid", ["A"], "G", "0.01"),
            tool("free_short", ["A"], "D", 0),
            tool("free_short2", ["D"], "G", 0),
        ],
        budget=0,
    )
    r = plan(p, method)
    assert (r.steps, r.cost) == (("free_short", "free_short2"), Decimal(0))


@METHODS
def test_max_steps_limits_plan_length(method: str) -> None:
    tools = [*CHAIN, tool("one_shot", ["Query"], "Choice", 10)]
    assert plan(problem(["Query"], "Choice", tools), method).cost == Decimal(6)
    r = plan(problem(["Query"], "Choice", tools, max_steps=2), method)
    assert (r.steps, r.cost) == (("one_shot",), Decimal(10))
    r = plan(problem(["Query"], "Choice", tools, max_steps=0), method)
    assert r.status == "infeasible" and "within max_steps 0" in (r.reason or "")
    r = plan(problem(["Query"], "Choice", tools, max_steps=2, budget=9), method)
    assert r.reason == "cheapest plan within max_steps 2 costs 10 > budget 9"


@METHODS
def test_goal_already_held(method: str) -> None:
    r = plan(problem(["G"], "G", [tool("g", [], "G", 1)], budget=0), method)
    assert (r.status, r.steps, r.cost) == ("ok", (), Decimal(0))


@METHODS
def test_same_input_listed_twice_and_tool_without_inputs(method: str) -> None:
    p = problem([], "G", [tool("make_a", [], "A", 2), tool("g", ["A", "A"], "G", 1)])
    assert plan(p, method).steps == ("make_a", "g")


def test_expected_objective_avoids_unreliable_tools() -> None:
    p = problem(
        ["A"], "G", [tool("flaky", ["A"], "G", 1, failure_rate=0.6), tool("steady", ["A"], "G", 2)]
    )
    assert exact_plan(p).steps == ("flaky",)
    r = exact_plan(p, objective="expected")
    assert r.steps == ("steady",) and r.expected_cost == Decimal(2)
    assert plan(p, "cats").steps == ("steady",)


@pytest.mark.parametrize("seed", range(6))
def test_generated_costbench_sized_problems_match_brute_force(seed: int) -> None:
    p = generate_problem(10, seed=seed)
    best = brute_force(p)
    assert best is not None
    for method in ("exact", "cats"):
        r = plan(p, method)
        assert (r.cost, len(r.steps), r.steps) == best
        replay(p, r)


def test_exact_is_fast_on_costbench_sized_problems() -> None:
    began = time.perf_counter()
    for seed in range(5):
        r = plan(generate_problem(40, seed=seed), "exact")
        assert r.ok and r.proven_optimal
    assert time.perf_counter() - began < 5


def test_exact_gives_up_cleanly_and_cats_still_plans() -> None:
    p = generate_problem(300, seed=1)
    with pytest.raises(PlannerGaveUp, match="too big for exact search"):
        exact_plan(p, limits=Limits(max_expansions=50))
    r = plan(p, "cats", simulations=100, certify=False)
    assert r.ok and not r.proven_optimal
    replay(p, r)


def test_exact_time_limit() -> None:
    p = generate_problem(400, seed=0)
    began = time.perf_counter()
    with pytest.raises(PlannerGaveUp, match="time limit"):
        exact_plan(p, limits=Limits(time_limit=0.3))
    assert time.perf_counter() - began < 3


@METHODS
def test_shared_ancestor_counted_once_under_a_tight_budget(method: str) -> None:
    # X and Y both need A: an estimate that adds A twice (13) would wrongly prune this plan.
    p = problem(
        ["S"],
        "G",
        [
            tool("make_a", ["S"], "A", 5),
            tool("x", ["A"], "X", 1),
            tool("y", ["A"], "Y", 1),
            tool("g", ["X", "Y"], "G", 1),
            tool("direct", ["S"], "G", "8.5"),
        ],
        budget=8,
    )
    r = plan(p, method)
    assert (r.steps, r.cost) == (("make_a", "x", "y", "g"), Decimal(8))
