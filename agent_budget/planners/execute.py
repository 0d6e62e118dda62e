"""Run a plan against a problem's simulated environment: events, failures, replanning.

The planner never sees an event before it happens. Events fire when the number of executed
calls reaches their `after_step` (all events of one step together, in file order), then the
executor replans from the types it holds, with what is left of the budget and of `max_steps`.
A failed call (drawn from `failure_rate` with the seed) is paid, produces nothing, and also
triggers a replan.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent_budget.planners.dispatch import Method, plan
from agent_budget.planners.errors import EventPastPlanEnd, PlanningWarning
from agent_budget.planners.problem import (
    BanTool,
    CostChange,
    Event,
    Invalidate,
    Problem,
    Tool,
    ToolsChange,
    load_problem,
)
from agent_budget.planners.result import Call, ExecutionResult, ExecutionStatus, PlanResult


class _World:
    """The environment as it is now: tools (after events) and the types held."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.tools: dict[str, Tool] = {tool.name: tool for tool in problem.tools}
        self.held: dict[str, None] = dict.fromkeys(problem.start)
        self.warnings: list[str] = []

    def as_problem(self, paid: Decimal, calls: int) -> Problem:
        base = self.problem
        return Problem(
            start=tuple(self.held),
            goal=base.goal,
            budget=None if base.budget is None else base.budget - paid,
            max_steps=None if base.max_steps is None else base.max_steps - calls,
            tools=tuple(self.tools.values()),
        )

    def apply(self, index: int, event: Event) -> None:
        if isinstance(event, BanTool):
            if self._present(index, event, event.tool):
                del self.tools[event.tool]
        elif isinstance(event, CostChange):
            if self._present(index, event, event.tool):
                tool = self.tools[event.tool]
                self.tools[event.tool] = tool.model_copy(update={"cost": event.cost})
        elif isinstance(event, Invalidate):
            for name in event.types:  # removed first, then added (PLANNING_FORMAT.md)
                self.held.pop(name, None)
            for name in event.add_start:
                self.held[name] = None
        elif isinstance(event, ToolsChange):
            for name in event.remove:
                if self._present(index, event, name):
                    del self.tools[name]
            for tool in event.add:
                self.tools[tool.name] = tool

    def _present(self, index: int, event: Event, name: str) -> bool:
        if name in self.tools:
            return True
        message = f"events.{index} ({event.type}) names tool {name!r}, already removed: ignored"
        self.warnings.append(message)
        warnings.warn(message, PlanningWarning, stacklevel=4)
        return False


def execute(
    problem: Problem | Mapping[str, Any] | str | Path,
    method: Method | str = "exact",
    *,
    seed: int = 0,
    budget: Decimal | None = None,
    max_calls: int = 10_000,
    **options: Any,
) -> ExecutionResult:
    """Plan, then execute step by step with the problem's events and failure draws, replanning
    after every event and failure. Raises `EventPastPlanEnd` when the goal is reached before
    an event's `after_step` (that event could never happen)."""
    loaded = load_problem(problem)
    if budget is not None:
        loaded = loaded.model_copy(update={"budget": budget})
    rng = random.Random(seed)
    world = _World(loaded)
    plans: list[PlanResult] = []

    def make_plan(paid: Decimal, calls: int) -> PlanResult:
        result = plan(world.as_problem(paid, calls), method, seed=seed + len(plans), **options)
        plans.append(result)
        return result

    first = make_plan(Decimal(0), 0)
    if not first.ok:
        return ExecutionResult(
            "infeasible", (), None, (), Decimal(0), 0, False, first.reason, plans=tuple(plans)
        )
    pending = sorted(enumerate(loaded.events), key=lambda item: item[1].after_step)
    queue = list(first.steps)
    executed: list[Call] = []
    paid = Decimal(0)
    replans = 0
    replan = False
    status: ExecutionStatus = "ok"
    reason: str | None = None
    while True:
        fired = [item for item in pending if item[1].after_step == len(executed)]
        for index, event in fired:
            world.apply(index, event)
        pending = [item for item in pending if item[1].after_step != len(executed)]
        if loaded.goal in world.held:
            break
        if fired or replan or not queue:
            replans += 1
            current = make_plan(paid, len(executed))
            if not current.ok:
                status = "unreachable"
                reason = f"after {len(executed)} calls: {current.reason}"
                break
            queue, replan = list(current.steps), False
        if len(executed) >= max_calls:
            status, reason = "unreachable", f"stopped after max_calls={max_calls} calls"
            break
        tool = world.tools.get(queue[0])
        if tool is None or any(name not in world.held for name in tool.inputs):
            replan = True  # cannot happen with a fresh plan; kept as a guard
            continue
        queue.pop(0)
        ok = tool.failure_rate == 0 or rng.random() >= tool.failure_rate
        paid += tool.cost
        executed.append(Call(tool.name, tool.cost, ok))
        if ok:
            world.held[tool.output] = None
        else:
            replan = True
    goal_reached = loaded.goal in world.held
    if goal_reached and pending:
        index, event = pending[0]
        raise EventPastPlanEnd(
            f"events.{index} ({event.type}) is at after_step {event.after_step}, but the plan "
            f"reached the goal after {len(executed)} calls: an event past the plan's end can "
            f"never happen; move it to after_step <= {len(executed)} or remove it"
        )
    return ExecutionResult(
        status,
        first.steps,
        first.cost,
        tuple(executed),
        paid,
        replans,
        goal_reached,
        reason,
        tuple(world.warnings),
        tuple(plans),
    )
