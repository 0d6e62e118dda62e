"""A user's task set, named by import path in a sweep (imported again by pool workers)."""

from __future__ import annotations

from pathlib import Path

from agent_budget.bench import TaskSet
from agent_budget.bench.sets import planner

ROOT = Path(__file__).resolve().parents[2]


def two_problems() -> TaskSet:
    return planner(generate={"tools": [8], "seeds": [0, 1]})


def own_budgets() -> TaskSet:
    """The example travel problem (cheapest plan $10.02 before its events) twice, each task
    with a USD budget of its own: $4 (no plan fits) and $40 (its cheapest plan fits)."""
    from agent_budget.bench.sets import PlannerTasks, score_plan
    from agent_budget.bench.tasks import Task

    base = planner(paths=[str(ROOT / "examples/problems/travel.json")]).tasks[0]
    tasks = [
        Task("poor", base.input, base.expected, budget={"usd": "4"}),
        Task("rich", base.input, base.expected, budget={"usd": "40", "prices": {"x": "1"}}),
    ]
    return PlannerTasks("own-budgets", tasks, score_plan)
