"""A user's task set, named by import path in a sweep (imported again by pool workers)."""

from __future__ import annotations

from agent_budget.bench import TaskSet
from agent_budget.bench.sets import planner


def two_problems() -> TaskSet:
    return planner(generate={"tools": [8], "seeds": [0, 1]})
