"""Seeded travel scenarios of a chosen difficulty, and events drawn with a seed.

Difficulty: ``depth`` (refinement steps per chain, 0-4), ``composites`` (composite tools per
sub-task), ``subtasks`` (how many of the six, location always first). A composite costs the
sum of the steps it covers times a noise factor in [0.7, 1.3]: sometimes a bargain,
sometimes dearer than the parts. Events are drawn so they matter: a ban or a price rise hits
a tool the optimal plan still needs, a preference change hits a sub-task already worked on,
a tool-set change removes a needed tool and adds another. Every sub-task but location also
gets an optional refinement (``read_reviews``, never needed for the goal), priced from a
random stream of its own so that adding them left every earlier scenario as it was.
"""

from __future__ import annotations

import random
import warnings
from decimal import Decimal
from typing import Any

from agent_budget.planners import execute
from agent_budget.planners.errors import EventPastPlanEnd, PlanningWarning
from agent_budget.tools.travel.domain import BY_NAME, MONTHS, REVIEW, SUBTASKS
from agent_budget.tools.travel.scenario import (
    EVENT_KINDS,
    BanEvent,
    CostEvent,
    InvalidScenario,
    PreferenceEvent,
    Scenario,
    ScenarioEvent,
    ToolsEvent,
    ToolSpec,
    assemble_tool,
    chain_steps,
    tool_name,
)

_WORDS = {
    ("location", "category"): "a {} city",
    ("location", "tier"): "{} prices",
    ("transport", "mode"): "getting there by {}",
    ("transport", "priority"): "the {} connection",
    ("accommodation", "tier"): "a {} stay",
    ("accommodation", "style"): "in a {}",
    ("attraction", "interest"): "{} to see",
    ("attraction", "pace"): "a {} pace",
    ("dining", "diet"): "{} food",
    ("dining", "tier"): "{} restaurants",
    ("shopping", "interest"): "{} for shopping",
}


def _money(x: float) -> Decimal:
    return Decimal(str(round(x, 2)))


def request_text(prefs: dict[str, dict[str, str]], month: str, days: int, budget: Any) -> str:
    """The user's request in words, from the preferences (what the model reads back)."""
    where = _WORDS[("location", "category")].format(prefs["location"]["category"])
    parts = [f"{days} days in {where} in {month}"]
    for sub, dims in prefs.items():
        for dim, value in dims.items():
            if (sub, dim) == ("location", "category") or value == "any":
                continue
            parts.append(_WORDS[(sub, dim)].format(value))
    text = ", ".join(parts)
    return text + (f", ${budget} of tool spend" if budget is not None else "")


def generate_scenario(
    seed: int = 0,
    *,
    subtasks: int = 6,
    depth: int | tuple[int, int] = (1, 2),
    composites: int = 2,
    event: str | None = None,
    budget_factor: float | None = 1.4,
    budget: Decimal | None = None,
    name: str | None = None,
) -> Scenario:
    """A scenario: a random request, a tool set (every atomic tool of each chain plus
    ``composites`` composites per sub-task), a budget of ``budget_factor`` times the
    cheapest plan (or ``budget``), and one drawn ``event`` of the given kind (or none)."""
    if not 1 <= subtasks <= len(SUBTASKS):
        raise InvalidScenario(f"subtasks must be 1..{len(SUBTASKS)}, got {subtasks}")
    if event is not None and event not in EVENT_KINDS:
        raise InvalidScenario(f"event {event!r}: use one of {', '.join(EVENT_KINDS)}")
    rng = random.Random(f"travel:{seed}")
    low, high = (depth, depth) if isinstance(depth, int) else depth
    if not 0 <= low <= high <= 4:
        raise InvalidScenario(f"depth must be within 0..4, got {depth}")
    chosen_depth = rng.randint(low, high)
    subs = [SUBTASKS[0], *rng.sample(SUBTASKS[1:], subtasks - 1)]
    subs.sort(key=SUBTASKS.index)
    prefs = {s.name: {d: rng.choice(values) for d, values in s.dims.items()} for s in subs}
    month = rng.choice(MONTHS)
    days = rng.randint(2, 5)
    tools: list[ToolSpec] = []
    for sub in subs:
        chain = chain_steps(sub, chosen_depth)
        step_cost = [_money(rng.uniform(0.3, 2.5)) for _ in chain]
        for step, cost in zip(chain, step_cost, strict=True):
            tools.append(
                ToolSpec(name=tool_name(sub, [step]), subtask=sub.name, steps=(step,), cost=cost)
            )
        spans = [(i, j) for i in range(len(chain)) for j in range(i + 1, len(chain))]
        for i, j in rng.sample(spans, min(composites, len(spans))):
            covered = chain[i : j + 1]
            cost = _money(float(sum(step_cost[i : j + 1])) * rng.uniform(0.7, 1.3))
            tools.append(
                ToolSpec(
                    name=tool_name(sub, covered), subtask=sub.name, steps=tuple(covered), cost=cost
                )
            )
    tools.append(assemble_tool())
    # Drawn apart, so adding optional refinements left every earlier scenario as it was.
    extra_rng = random.Random(f"travel-extras:{seed}")
    extras = tuple(
        ToolSpec(
            name=f"{sub.name}_{REVIEW}",
            subtask=sub.name,
            steps=(REVIEW,),
            cost=_money(extra_rng.uniform(0.2, 0.8)),
        )
        for sub in subs
        if sub.name != "location"
    )
    base = Scenario(
        name=name or f"trip-{seed}",
        request="(set below)",
        prefs=prefs,
        month=month,
        days=days,
        depth=chosen_depth,
        tools=tuple(tools),
        extras=extras,
        seed=seed,
    )
    optimum = _paid(base)
    if budget is None and budget_factor is not None:
        budget = _money(float(optimum) * budget_factor + 1)
    scenario = base.model_copy(
        update={"budget": budget, "request": request_text(prefs, month, days, budget)}
    )
    if event is not None:
        scenario = draw_event(scenario, event, seed=seed)
        if budget_factor is not None and budget is not None:
            # Events can raise the cheapest path; keep the budget able to pay for it.
            need = _paid(scenario)
            if need * Decimal("1.15") > budget:
                budget = _money(float(need) * budget_factor + 1)
                scenario = scenario.model_copy(
                    update={"budget": budget, "request": request_text(prefs, month, days, budget)}
                )
    return Scenario.model_validate(scenario.model_dump())


def optimal_run(scenario: Scenario) -> Any:
    """What the replanning exact planner does on the scenario (PLANNING_FORMAT --execute)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanningWarning)
        return execute(scenario.to_problem(), "exact")


def _paid(scenario: Scenario) -> Decimal:
    unbounded = scenario.model_copy(update={"budget": None})
    result = optimal_run(unbounded)
    if not result.goal_reached:
        raise InvalidScenario(f"{scenario.name}: no way to the goal ({result.reason})")
    return Decimal(result.paid)


def draw_event(scenario: Scenario, kind: str, *, seed: int = 0, attempts: int = 40) -> Scenario:
    """The scenario with one more event of ``kind``, drawn so that it changes the optimal
    run and leaves the goal reachable."""
    rng = random.Random(f"event:{kind}:{seed}")
    plain = scenario.model_copy(update={"budget": None})
    base = optimal_run(plain)
    path = [c.tool for c in base.executed]
    by_name = {t.name: t for t in scenario.all_tools()}
    for _ in range(attempts):
        after = rng.randrange(1, len(path) - 1)
        later = [p for p in path[after:] if p != "assemble_trip"]
        if not later:
            continue
        target = rng.choice(later)
        made: ScenarioEvent
        if kind == "ban_tool":
            made = BanEvent(after_step=after, type="ban_tool", tool=target)
        elif kind == "cost_change":
            cost = _money(float(by_name[target].cost) * rng.uniform(2.5, 5.0) + 1)
            made = CostEvent(after_step=after, type="cost_change", tool=target, cost=cost)
        elif kind == "preference_change":
            done = {by_name[p].subtask for p in path[:after]} - {"trip"}
            sub_name = rng.choice(sorted(done))
            sub = BY_NAME[sub_name]
            dim = rng.choice(sorted(sub.dims))
            current = scenario.prefs[sub_name][dim]
            value = rng.choice([v for v in sub.dims[dim] if v != current])
            made = PreferenceEvent(
                after_step=after, type="preference_change", subtask=sub_name, set={dim: value}
            )
        else:
            spec = by_name[target]
            sub = BY_NAME[spec.subtask]
            chain = chain_steps(sub, scenario.depth)
            i = rng.randrange(len(chain) - 1)
            j = rng.randrange(i + 1, len(chain))
            added = ToolSpec(
                name=f"partner_{sub.name}_{chain[i]}_to_{chain[j]}",
                subtask=sub.name,
                steps=tuple(chain[i : j + 1]),
                cost=_money(rng.uniform(0.5, 0.9) * (j - i + 1) * 1.2),
            )
            if added.name in by_name:
                continue
            made = ToolsEvent(after_step=after, type="tools_change", remove=(target,), add=(added,))
        candidate = scenario.model_copy(update={"events": (*scenario.events, made)})
        try:
            Scenario.model_validate(candidate.model_dump())
            result = optimal_run(candidate.model_copy(update={"budget": None}))
        except (EventPastPlanEnd, InvalidScenario, ValueError):
            continue
        if result.goal_reached and [c.tool for c in result.executed] != path:
            return candidate
    raise InvalidScenario(f"{scenario.name}: could not draw a {kind} event that matters")
