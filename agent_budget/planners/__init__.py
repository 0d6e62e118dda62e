"""Planners over priced tools: `exact` (A* over held-type sets) and `cats` (cost-augmented MCTS).

Both read the format of PLANNING_FORMAT.md (`Problem`) and return a `PlanResult`; `execute`
runs a plan against the problem's simulated events and failures, replanning as it goes.
"""

from agent_budget.planners.cats import cats_plan
from agent_budget.planners.dispatch import METHODS, Method, plan
from agent_budget.planners.errors import (
    EventPastPlanEnd,
    InvalidProblem,
    PlannerGaveUp,
    PlanningWarning,
)
from agent_budget.planners.exact import Limits, exact_plan
from agent_budget.planners.execute import execute
from agent_budget.planners.prior import ActionPrior, ChatModelPrior, PriorContext
from agent_budget.planners.problem import Problem, Tool, load_problem
from agent_budget.planners.result import Call, ExecutionResult, PlanResult
from agent_budget.planners.tool import plan_tool, problem_from_tools

__all__ = [
    "METHODS",
    "ActionPrior",
    "Call",
    "ChatModelPrior",
    "EventPastPlanEnd",
    "ExecutionResult",
    "InvalidProblem",
    "Limits",
    "Method",
    "PlanResult",
    "PlannerGaveUp",
    "PlanningWarning",
    "PriorContext",
    "Problem",
    "Tool",
    "cats_plan",
    "exact_plan",
    "execute",
    "load_problem",
    "plan",
    "plan_tool",
    "problem_from_tools",
]
