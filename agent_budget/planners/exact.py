"""The exact planner: A* over sets of held types, optimal under budget and `max_steps`.

Order of plans: total cost, then fewer calls, then the lexicographically smallest sequence of
tool names. That order is kept by extending a plan, so A* with a consistent heuristic (h_max of
the delete-free relaxation) pops, for every state, its best plan first, and the first goal state
popped is the answer. Labels carry the nominal cost and the step count too, because with a
budget on an `expected` objective, or with `max_steps`, a dearer but shorter (or nominally
cheaper) plan to the same state may be the only one that still fits.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from agent_budget.planners.errors import PlannerGaveUp
from agent_budget.planners.problem import Problem
from agent_budget.planners.result import PlanResult
from agent_budget.planners.space import Number, Space

Objective = Literal["nominal", "expected"]

DEFAULT_MAX_EXPANSIONS = 200_000
DEFAULT_MAX_GENERATED = 1_500_000
DEFAULT_TIME_LIMIT = 10.0


@dataclass(frozen=True)
class Limits:
    """When a search gives up rather than run out of time or memory."""

    max_expansions: int = DEFAULT_MAX_EXPANSIONS
    max_generated: int = DEFAULT_MAX_GENERATED
    time_limit: float = DEFAULT_TIME_LIMIT


@dataclass(frozen=True)
class SearchOutcome:
    path: tuple[int, ...] | None  # tool indices, None when no plan fits
    expanded: int
    generated: int
    seconds: float


# A label: (f, steps, names, g_weight, g_nominal, mask, path)
_Label = tuple[Number, int, tuple[str, ...], Number, int, int, tuple[int, ...]]


def search(
    space: Space,
    *,
    use_budget: bool = True,
    use_max_steps: bool = True,
    bound: Number | None = None,
    limits: Limits | None = None,
) -> SearchOutcome:
    """A* from the start. `bound` drops every plan whose weight would exceed it (cats uses its
    best plan so far as the bound). Raises `PlannerGaveUp` at a limit."""
    limits = limits or Limits()
    began = time.perf_counter()
    budget = space.budget if use_budget else None
    max_steps = space.max_steps if use_max_steps else None
    expanded = generated = 0

    def fits(mask: int, g_weight: Number, g_nominal: int, steps: int) -> Number | None:
        """f of a label if it can still lead to a plan within every limit, else None."""
        h = space.h_weight(mask)
        if h is None:
            return None
        f = g_weight + h
        if bound is not None and f > bound:
            return None
        if budget is not None:
            hn = space.h_nominal(mask)
            if hn is None or g_nominal + hn > budget:
                return None
        if max_steps is not None:
            hs = space.h_steps(mask)
            if hs is None or steps + hs > max_steps:
                return None
        return f

    def dominated(old: tuple[int, int], nominal: int, steps: int) -> bool:
        # `old` was popped (or pushed) earlier, so its (weight, steps, names) key is no worse.
        return old[0] <= nominal and (max_steps is None or old[1] <= steps)

    root_f = fits(space.start, 0, 0, 0)
    if root_f is None:
        return SearchOutcome(None, 0, 0, time.perf_counter() - began)
    heap: list[_Label] = [(root_f, 0, (), 0, 0, space.start, ())]
    closed: dict[int, list[tuple[int, int]]] = {}
    best_pushed: dict[int, tuple[Number, int, tuple[str, ...], int]] = {}
    while heap:
        _f, steps, names, g_weight, g_nominal, mask, path = heapq.heappop(heap)
        done = closed.setdefault(mask, [])
        if any(dominated(old, g_nominal, steps) for old in done):
            continue
        if space.is_goal(mask):
            return SearchOutcome(path, expanded, generated, time.perf_counter() - began)
        done.append((g_nominal, steps))
        expanded += 1
        if expanded > limits.max_expansions or generated > limits.max_generated:
            _give_up(space, "node", limits, expanded, generated, began)
        if expanded % 256 == 0 and time.perf_counter() - began > limits.time_limit:
            _give_up(space, "time", limits, expanded, generated, began)
        for ct in space.applicable(mask):
            child = mask | ct.bit
            cw, cn, cs = g_weight + ct.weight, g_nominal + ct.nominal, steps + 1
            f = fits(child, cw, cn, cs)
            if f is None:
                continue
            cnames = (*names, ct.name)
            prev = best_pushed.get(child)
            if (
                prev is not None
                and (prev[0], prev[1], prev[2]) <= (cw, cs, cnames)
                and prev[3] <= cn
                and (max_steps is None or prev[1] <= cs)
            ):
                continue  # an earlier label here is no worse in any respect
            if prev is None or (cw, cs, cnames) < (prev[0], prev[1], prev[2]):
                best_pushed[child] = (cw, cs, cnames, cn)
            generated += 1
            heapq.heappush(heap, (f, cs, cnames, cw, cn, child, (*path, ct.index)))
    return SearchOutcome(None, expanded, generated, time.perf_counter() - began)


def _give_up(
    space: Space, what: str, limits: Limits, expanded: int, generated: int, began: float
) -> None:
    seconds = time.perf_counter() - began
    limit = (
        f"time limit {limits.time_limit:g}s"
        if what == "time"
        else f"node limit ({limits.max_expansions} expanded / {limits.max_generated} generated)"
    )
    raise PlannerGaveUp(
        f"exact search gave up at its {limit} after expanding {expanded} states "
        f"({len(space.tools)} relevant tools): the problem is too big for exact search with "
        "these limits; raise them or use method 'cats'",
        expanded=expanded,
        generated=generated,
        seconds=seconds,
    )


def plan_cost(space: Space, path: tuple[int, ...]) -> Decimal:
    """Exact nominal cost: the sum of the tools' own Decimals (keeps the file's digits)."""
    return sum((space.tools[i].tool.cost for i in path), Decimal(0))


def expected_cost(space: Space, path: tuple[int, ...]) -> Decimal:
    total = Decimal(0)
    for i in path:
        tool = space.tools[i].tool
        total += tool.cost / Decimal(repr(1.0 - tool.failure_rate))
    return total


def infeasible_reason(space: Space, limits: Limits | None = None) -> str:
    """Why no plan fits: unreachable goal, too few steps, or the cheapest plan's exact cost."""
    problem = space.problem
    goal = problem.goal
    if space.h_nominal(space.start) is None:
        return (
            f"goal {goal!r} cannot be produced from the start types "
            f"{sorted(problem.start)} with the available tools"
        )
    nominal = Space(problem.model_copy(update={"budget": None}))
    steps_note = f" within max_steps {problem.max_steps}" if problem.max_steps is not None else ""
    try:
        cheapest = search(nominal, limits=limits)
    except PlannerGaveUp:
        return (
            f"no plan{steps_note} fits budget {problem.budget} (search limits were reached "
            "before the cheapest plan's exact cost was found)"
        )
    if cheapest.path is None:
        return f"no plan reaches goal {goal!r}{steps_note}"
    cost = plan_cost(nominal, cheapest.path)
    if problem.budget is not None and cost > problem.budget:
        return f"cheapest plan{steps_note} costs {cost} > budget {problem.budget}"
    return "no plan fits"  # only reachable when limits differ between the two searches


def exact_plan(
    problem: Problem,
    *,
    objective: Objective = "nominal",
    limits: Limits | None = None,
) -> PlanResult:
    """The cheapest plan that fits `problem.budget` and `problem.max_steps`.

    `objective="expected"` minimises expected paid cost when tools can fail (each failed call
    is paid and retried), while the budget still bounds the nominal cost. Raises
    `PlannerGaveUp` when the search hits `limits`."""
    began = time.perf_counter()
    space = Space(problem, expected=objective == "expected")
    if space.is_goal(space.start) or problem.goal in problem.start:
        return PlanResult(
            "ok", (), Decimal(0), method="exact", proven_optimal=True, expected_cost=Decimal(0)
        )
    outcome = search(space, limits=limits)
    stats = {
        "expanded": outcome.expanded,
        "generated": outcome.generated,
        "seconds": time.perf_counter() - began,
        "relevant_tools": len(space.tools),
    }
    if outcome.path is None:
        return PlanResult(
            "infeasible",
            reason=infeasible_reason(space, limits),
            method="exact",
            stats=stats,
            proven_optimal=True,
        )
    return PlanResult(
        "ok",
        tuple(space.tools[i].name for i in outcome.path),
        plan_cost(space, outcome.path),
        method="exact",
        expected_cost=expected_cost(space, outcome.path),
        proven_optimal=True,
        stats=stats,
    )
