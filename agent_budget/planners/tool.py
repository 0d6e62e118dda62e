"""`plan_tool`: a LangChain tool an agent calls to get the cheapest plan over its own tools.

Each priced tool describes itself in `BaseTool.metadata`: `input_types` (list of type names),
`output_type`, `cost`, and optionally `failure_rate`. Tools without that metadata are left out
of planning. The budget can be a callable, so a graph can pass what is left *now* (e.g. a
tracker's remaining USD) at the moment the agent asks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agent_budget.planners.dispatch import Method, plan
from agent_budget.planners.errors import InvalidProblem, PlannerGaveUp
from agent_budget.planners.problem import Problem

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

BudgetSource = Decimal | None | Callable[[], Decimal | None]


def problem_from_tools(
    tools: Sequence[BaseTool], *, start: Sequence[str], goal: str, budget: Decimal | None = None
) -> Problem:
    """A `Problem` from LangChain tools' metadata (tools without `output_type` are skipped)."""
    specs = []
    for t in tools:
        meta = t.metadata or {}
        if "output_type" not in meta:
            continue
        spec: dict[str, Any] = {
            "name": t.name,
            "inputs": list(meta.get("input_types", ())),
            "output": meta["output_type"],
            "cost": meta.get("cost", meta.get("price")),
        }
        if "failure_rate" in meta:
            spec["failure_rate"] = meta["failure_rate"]
        specs.append(spec)
    data: dict[str, Any] = {"start": list(start), "goal": goal, "tools": specs}
    if budget is not None:
        data["budget"] = budget
    return Problem.from_dict(data, source="tool metadata")


def plan_tool(
    tools: Sequence[BaseTool],
    *,
    budget: BudgetSource = None,
    method: Method = "exact",
    name: str = "plan_cheapest_tools",
) -> BaseTool:
    """A tool taking `held_types` and `goal_type`, returning the plan JSON of
    PLANNING_FORMAT.md (or `{"status": "error", "reason": ...}` for a bad request)."""
    from langchain_core.tools import StructuredTool

    known = sorted({t.name for t in tools if (t.metadata or {}).get("output_type")})

    def run(held_types: list[str], goal_type: str) -> str:
        limit = budget() if callable(budget) else budget
        try:
            problem = problem_from_tools(tools, start=held_types, goal=goal_type, budget=limit)
            result = plan(problem, method)
        except (InvalidProblem, PlannerGaveUp) as exc:
            return json.dumps({"status": "error", "reason": str(exc)})
        return json.dumps(result.to_dict())

    return StructuredTool.from_function(
        run,
        name=name,
        description=(
            "Find the cheapest sequence of tool calls that produces `goal_type` from the data "
            "types you already hold, within the remaining budget. Call it before spending on "
            f"a multi-step task. Plannable tools: {', '.join(known) or '(none)'}."
        ),
    )
