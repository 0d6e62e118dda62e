from __future__ import annotations

import json
from decimal import Decimal

from langchain_core.tools import BaseTool, tool

from agent_budget.planners.tool import plan_tool, problem_from_tools


def make_tools() -> list[BaseTool]:
    @tool
    def search(query: str) -> str:
        """Search."""
        return "results"

    @tool
    def summarize(results: str) -> str:
        """Summarize."""
        return "summary"

    @tool
    def research(query: str) -> str:
        """Do everything, dearly."""
        return "summary"

    @tool
    def unpriced(x: str) -> str:
        """No planning metadata."""
        return x

    search.metadata = {"input_types": ["Query"], "output_type": "Results", "cost": 0.01}
    summarize.metadata = {"input_types": ["Results"], "output_type": "Summary", "cost": 0.02}
    research.metadata = {"input_types": ["Query"], "output_type": "Summary", "cost": 0.05}
    return [search, summarize, research, unpriced]


def test_problem_from_tool_metadata() -> None:
    p = problem_from_tools(make_tools(), start=["Query"], goal="Summary")
    assert [t.name for t in p.tools] == ["search", "summarize", "research"]
    assert p.tools[0].cost == Decimal("0.01")


def test_plan_tool_answers_with_the_cheapest_plan_under_the_live_budget() -> None:
    left = [Decimal("1")]
    planner = plan_tool(make_tools(), budget=lambda: left[0])
    out = json.loads(planner.invoke({"held_types": ["Query"], "goal_type": "Summary"}))
    assert out == {"status": "ok", "steps": ["search", "summarize"], "cost": 0.03}
    left[0] = Decimal("0.02")
    out = json.loads(planner.invoke({"held_types": ["Query"], "goal_type": "Summary"}))
    assert (
        out["status"] == "infeasible" and out["reason"] == "cheapest plan costs 0.03 > budget 0.02"
    )
    out = json.loads(planner.invoke({"held_types": [], "goal_type": ""}))
    assert out["status"] == "error"
