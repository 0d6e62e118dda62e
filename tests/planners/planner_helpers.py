"""Reference answers for planner tests: brute force over every valid call sequence, and replay."""

from __future__ import annotations

from decimal import Decimal

from agent_budget.planners import PlanResult, Problem


def tool(
    name: str,
    inputs: list[str] | tuple[str, ...],
    output: str,
    cost: str | float,
    failure_rate: float = 0.0,
) -> dict[str, object]:
    return {
        "name": name,
        "inputs": list(inputs),
        "output": output,
        "cost": cost,
        "failure_rate": failure_rate,
    }


def problem(
    start: list[str], goal: str, tools: list[dict[str, object]], **extra: object
) -> Problem:
    return Problem.from_dict({"start": start, "goal": goal, "tools": tools, **extra})


def brute_force(p: Problem) -> tuple[Decimal, int, tuple[str, ...]] | None:
    """The best (cost, calls, names) over all sequences of useful calls, by plain DFS.
    Independent of the planners' code on purpose (no relaxation, no pruning by bounds)."""
    tools = sorted(p.tools, key=lambda t: t.name)
    best: list[tuple[Decimal, int, tuple[str, ...]]] = []

    def dfs(held: frozenset[str], cost: Decimal, names: tuple[str, ...]) -> None:
        if p.goal in held:
            key = (cost, len(names), names)
            if not best or key < best[0]:
                best[:] = [key]
            return
        if p.max_steps is not None and len(names) >= p.max_steps:
            return
        for t in tools:
            if t.output in held or any(i not in held for i in t.inputs):
                continue
            new_cost = cost + t.cost
            if p.budget is not None and new_cost > p.budget:
                continue
            dfs(held | {t.output}, new_cost, (*names, t.name))

    dfs(frozenset(p.start), Decimal(0), ())
    return best[0] if best else None


def replay(p: Problem, result: PlanResult) -> Decimal:
    """Checks a returned plan is valid step by step; returns its exact cost."""
    by_name = {t.name: t for t in p.tools}
    held = set(p.start)
    total = Decimal(0)
    for name in result.steps:
        assert name in by_name, f"plan calls unknown tool {name}"
        t = by_name[name]
        missing = [i for i in t.inputs if i not in held]
        assert not missing, f"{name} called without {missing}"
        held.add(t.output)
        total += t.cost
    assert p.goal in held, "plan does not produce the goal"
    assert result.cost == total, f"reported cost {result.cost} != replayed {total}"
    if p.budget is not None:
        assert total <= p.budget, f"plan costs {total} > budget {p.budget}"
    if p.max_steps is not None:
        assert len(result.steps) <= p.max_steps
    return total
