"""Cost-of-pass and the Pareto frontier against hand-computed examples."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_budget.bench.metrics import INFINITY, cells, cost_of_pass, pareto_frontier

D = Decimal


def test_cost_of_pass_is_total_cost_over_passes() -> None:
    # 10 attempts at $0.03 each, 4 pass: mean cost 0.03 / pass rate 0.4 = $0.075 per pass.
    assert cost_of_pass(D("0.30"), 4) == D("0.075")
    assert cost_of_pass(D("0"), 3) == 0  # free and passing: a pass costs nothing


def test_cost_of_pass_of_a_configuration_that_never_passes_is_infinite() -> None:
    result = cost_of_pass(D("0.12"), 0)
    assert result == INFINITY and result.is_infinite()
    assert result > D("1e30")  # compares like a number: sorts after every finite cost
    with pytest.raises(ValueError, match="passes must be >= 0"):
        cost_of_pass(D(1), -1)


def test_pareto_frontier_hand_computed() -> None:
    points = [
        ("a", D("0.010"), 0.50),  # cheapest: on the frontier
        ("b", D("0.020"), 0.50),  # costs more than a for the same accuracy: dominated
        ("c", D("0.020"), 0.70),  # on
        ("d", D("0.050"), 0.65),  # dominated by c (cheaper and better)
        ("e", D("0.080"), 0.90),  # on: the most accurate
        ("f", D("0.080"), 0.90),  # the same point as e: neither dominates the other
        ("g", D("0.000"), 0.00),  # free and never right: still not dominated
    ]
    assert pareto_frontier(points) == ["g", "a", "c", "e", "f"]


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 10)), min_size=1, max_size=12, unique=True
    )
)
def test_frontier_points_are_exactly_the_undominated_ones(raw: list[tuple[int, int]]) -> None:
    points = [(f"p{i}", D(c), a / 10) for i, (c, a) in enumerate(raw)]
    front = set(pareto_frontier(points))
    for name, cost, acc in points:
        beaten = any(c <= cost and a >= acc and (c, a) != (cost, acc) for _, c, a in points)
        assert (name in front) == (not beaten)


def result(config: str, budget: str, passed: bool, usd: str, **kw: Any) -> dict[str, Any]:
    return {
        "config": config, "budget": budget, "passed": passed, "usd": usd, "judge_usd": "0",
        "input_tokens": 10, "output_tokens": 2, "model_calls": 1,
        "tokens_by_model": {"m": {"input": 10, "output": 2, "calls": 1}},
        "tool_calls": {"search": 1}, "overruns": [], "status": kw.get("status", "ok"),
    }  # fmt: skip


def test_cells_aggregate_and_mark_the_frontier() -> None:
    rows = [
        result("cheap", "b1", True, "0.01"),
        result("cheap", "b1", False, "0.01"),
        result("cheap", "b1", False, "0.02"),
        result("cheap", "b1", True, "0.02"),  # 2/4 pass, $0.06: CoP 0.03, mean 0.015
        result("never", "b1", False, "0.05"),
        result("never", "b1", False, "0.03"),  # 0/2: CoP infinite, mean 0.04
        result("good", "b1", True, "0.02"),
        result("good", "b1", True, "0.04"),  # 2/2, $0.06: CoP 0.03, mean 0.03
        result("cut", "b1", True, "0.001"),
        result("cut", "b1", False, "0", status="refused"),  # incomplete: off the frontier
    ]
    found = {c.config: c for c in cells(rows, {"b1": D("0.05")})}
    cheap, never, good, cut = found["cheap"], found["never"], found["good"], found["cut"]
    assert (cheap.accuracy, cheap.mean_usd, cheap.cost_of_pass) == (0.5, D("0.015"), D("0.03"))
    assert never.accuracy == 0 and never.cost_of_pass.is_infinite()
    assert never.to_dict()["cost_of_pass"] == "inf"
    assert (good.accuracy, good.mean_usd, good.cost_of_pass) == (1.0, D("0.03"), D("0.03"))
    assert cheap.tokens_by_model == {"m": {"input": 40, "output": 8, "calls": 4}}
    assert cheap.tool_calls == {"search": 4}
    assert [c.config for c in found.values() if c.on_frontier] == ["cheap", "good"]
    assert not cut.complete and cut.refused == 1
