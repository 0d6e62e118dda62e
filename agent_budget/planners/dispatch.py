"""One entry point over both planners: `plan(problem, method=...)`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from agent_budget.planners.errors import InvalidProblem
from agent_budget.planners.problem import Problem, load_problem
from agent_budget.planners.result import PlanResult

Method = Literal["exact", "cats"]
METHODS: tuple[str, ...] = ("exact", "cats")


def plan(
    problem: Problem | Mapping[str, Any] | str | Path,
    method: Method | str = "exact",
    *,
    seed: int = 0,
    budget: Decimal | None = None,
    **options: Any,
) -> PlanResult:
    """The cheapest plan for `problem` (a `Problem`, dict, JSON text or file path) that fits its
    budget, or `status="infeasible"` with the reason. `budget` overrides the problem's.
    `options` go to the planner (`exact_plan` or `cats_plan`)."""
    loaded = load_problem(problem)
    if budget is not None:
        if budget < 0:
            raise InvalidProblem(f"budget must be >= 0, got {budget}")
        loaded = loaded.model_copy(update={"budget": budget})
    if method == "exact":
        from agent_budget.planners.exact import exact_plan

        return exact_plan(loaded, **options)
    if method == "cats":
        from agent_budget.planners.cats import cats_plan

        return cats_plan(loaded, seed=seed, **options)
    raise InvalidProblem(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
