"""Rich tables for `agent-budget plan` (presentation only)."""

from __future__ import annotations

from rich.table import Table

from agent_budget.planners.problem import Problem
from agent_budget.planners.result import ExecutionResult, PlanResult


def plan_table(result: PlanResult | ExecutionResult, problem: Problem, title: str) -> Table:
    tools = {tool.name: tool for tool in problem.tools}
    for event in problem.events:  # tools added by events, for the executed table
        for tool in getattr(event, "add", ()):
            tools.setdefault(tool.name, tool)
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("tool")
    table.add_column("needs -> makes")
    table.add_column("cost", justify="right")
    if isinstance(result, ExecutionResult):
        table.add_column("ok", justify="center")
        for n, call in enumerate(result.executed, 1):
            tool = tools.get(call.tool)
            shape = f"{', '.join(tool.inputs)} -> {tool.output}" if tool else ""
            table.add_row(str(n), call.tool, shape, str(call.cost), "yes" if call.ok else "FAILED")
        caption = (
            f"{result.status}: paid {result.paid} in {len(result.executed)} calls, "
            f"{result.replans} replans, goal {'reached' if result.goal_reached else 'not reached'}"
            f"; first plan: {' > '.join(result.steps) or '(none)'}"
        )
    else:
        for n, name in enumerate(result.steps, 1):
            tool = tools[name]
            table.add_row(
                str(n), name, f"{', '.join(tool.inputs)} -> {tool.output}", str(tool.cost)
            )
        caption = f"{result.status} ({result.method}): total {result.cost}"
        if result.cost is None:
            caption = f"{result.status} ({result.method})"
    if result.reason:
        caption += f"\n{result.reason}"
    table.caption = caption
    return table
