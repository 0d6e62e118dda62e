"""Planner errors, under the package-wide `AgentBudgetError`."""

from __future__ import annotations

from agent_budget.errors import AgentBudgetError


class InvalidProblem(AgentBudgetError, ValueError):
    """A planning problem is malformed or inconsistent. The message names the field."""


class EventPastPlanEnd(InvalidProblem):
    """An event is set after a step the execution never reached: it could not happen."""


class PlannerGaveUp(AgentBudgetError):
    """A search hit its node or time limit before it could answer (the problem is too big
    for that planner with those limits: raise them, or use `cats`)."""

    def __init__(self, message: str, *, expanded: int, generated: int, seconds: float) -> None:
        self.expanded = expanded
        self.generated = generated
        self.seconds = seconds
        super().__init__(message)


class PlanningWarning(UserWarning):
    """Something in a problem was ignored on purpose (e.g. an event naming a removed tool)."""
