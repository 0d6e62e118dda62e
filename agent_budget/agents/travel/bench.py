"""The travel scenarios as a task set of the evaluation harness (`agent_budget.bench`), and the
three agents compared on them.

    tasks: {set: travel, per_kind: 25}                 # static and each event kind
    budgets: [{label: scenario}]                       # each task brings its own money
    configs:
      - {name: planner, agent: "agent_budget.agents.travel.bench:planner_agent"}
      - {name: react, agent: "agent_budget.agents.travel.bench:react_agent",
         task_budget: [prices], budget: {message_template: " ", model_calls: 6}}
      - {name: react_budget, agent: "agent_budget.agents.travel.bench:react_agent",
         budget: {model_calls: 6, on_exhausted: finalize}}

Each task is one generated scenario (plain data, replayable) carrying its own budget: the
scenario's USD and every tool's price (`Task.budget`). A task passes when the trip's goal is
reached; its score is optimal cost / paid (1.0 on the optimum), and its detail is a JSON object
(exact match of the executed path with the replanning exact planner's, paid, optimal, calls,
overrun of the scenario's budget) that `benchmarks/travel.py` reads back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.tasks import Judge, Score, Task, TaskSet

KINDS = ("static", "ban_tool", "cost_change", "preference_change", "tools_change")
RUN_KEY = "trip_task"
"""State key naming the task a run belongs to (how a ReAct run's calls are found again)."""
_WORLDS: dict[str, Any] = {}
"""Task id -> the world of its run in this process (a ReAct graph's state has no trip)."""


class TravelTasks(TaskSet):
    """Each task's input is a scenario (plain data); the answer is the execution JSON."""

    def graph_input(self, task: Task) -> dict[str, Any]:
        return {"messages": [("user", task.input["request"])], RUN_KEY: task.id}

    def answer(self, state: Any) -> str:
        from agent_budget.agents.travel.graph import plan_json

        if state.get("trip"):
            return json.dumps(plan_json(state), sort_keys=True)
        world = _WORLDS.pop(str(state.get(RUN_KEY)), None)
        return json.dumps(world_execution(world), sort_keys=True) if world is not None else ""


def world_execution(world: Any) -> dict[str, Any]:
    """What a run did to its world, in the ``--execute`` shape (for agents without a plan)."""
    executed = [{"tool": c.tool, "cost": float(c.cost), "ok": c.ok} for c in world.calls]
    goal = any(c.tool == "assemble_trip" and c.ok for c in world.calls)
    return {"status": "ok" if goal else "unreachable", "executed": executed,
            "paid": float(world.paid()), "replans": 0, "goal_reached": goal}  # fmt: skip


def score_trip(task: Task, answer: str, judge: Judge | None = None) -> Score:
    run = json.loads(answer) if answer else {}
    planned = [c for c in run.get("executed", []) if not c.get("optional")]
    paid = Decimal(str(run.get("paid") or 0)) + Decimal(str(run.get("optional_paid") or 0))
    optimal = Decimal(str(task.expected["paid"]))
    budget = task.expected.get("budget")
    path = [c["tool"] for c in planned]
    facts = {
        "exact": bool(run.get("goal_reached")) and path == task.expected["path"],
        "paid": float(paid),
        "optimal": float(optimal),
        "calls": len(run.get("executed", [])),
        "optional_paid": float(run.get("optional_paid") or 0),
        "overrun": budget is not None and paid > Decimal(str(budget)),
        "status": run.get("status"),
    }  # fmt: skip
    if not run.get("goal_reached"):
        return Score(False, 0.0, json.dumps(facts))
    value = min(1.0, float(optimal / paid)) if paid else 1.0
    return Score(True, value, json.dumps(facts))


def travel_tasks(
    per_kind: int = 4,
    kinds: Sequence[str] = KINDS,
    seed: int = 1000,
    depth: Sequence[int] = (0, 3),
    composites: int = 2,
    interleave: bool = False,
) -> TaskSet:
    """``per_kind`` generated scenarios for each of ``kinds`` (static or an event kind), from
    seeds ``seed + 1000 * kind index + i``: a seed where no event that matters can be drawn is
    passed over, so every kind has ``per_kind`` and the same call gives the same tasks.
    ``interleave``: in turns (the first of each kind, then the second...) rather than kind by
    kind, so a sweep stopped early has a like sample of every kind."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise InvalidSweep(f"tasks.kinds: unknown {unknown}; use {', '.join(KINDS)}")
    if per_kind < 1:
        raise InvalidSweep(f"tasks.per_kind: at least 1, got {per_kind}")
    low, high = (int(depth[0]), int(depth[-1]))
    # Generating is seconds per hundred scenarios; a sweep asks twice (check, then run).
    made = _generated(per_kind, tuple(kinds), seed, low, high, composites)
    if not interleave:
        return made
    turns = sorted(
        made.tasks, key=lambda t: (int(t.id.rsplit("-", 1)[1]), kinds.index(t.meta["kind"]))
    )
    return TravelTasks(made.name, turns, made.scorer)


@lru_cache(maxsize=8)
def _generated(
    per_kind: int, kinds: tuple[str, ...], seed: int, low: int, high: int, composites: int
) -> TaskSet:
    from agent_budget.tools.travel.generate import generate_scenario, optimal_run
    from agent_budget.tools.travel.scenario import InvalidScenario

    tasks = []
    for kind in kinds:
        made, i = 0, 0
        while made < per_kind:
            s_seed = seed + KINDS.index(kind) * 1000 + i
            i += 1
            try:
                s = generate_scenario(
                    s_seed,
                    event=None if kind == "static" else kind,
                    depth=(low, high),
                    composites=composites,
                )
            except InvalidScenario:
                if i > per_kind * 5:
                    raise InvalidSweep(f"tasks: cannot draw {per_kind} {kind} scenarios") from None
                continue
            best = optimal_run(s)
            expected = {
                "paid": str(best.paid),
                "path": [c.tool for c in best.executed],
                "budget": None if s.budget is None else str(s.budget),
            }
            prices = {t.name: str(t.cost) for t in (*s.all_tools(), *s.extras)}
            own: dict[str, Any] = {"prices": prices}
            if s.budget is not None:
                own["usd"] = str(s.budget)
            data = json.loads(s.to_json())
            meta = {"kind": kind, "seed": s_seed}
            tasks.append(Task(f"{kind}-{made:03d}", data, expected, meta, own))
            made += 1
    return TravelTasks("travel", tasks, score_trip)


def _world(task: Task) -> Any:
    from agent_budget.tools.travel.scenario import Scenario
    from agent_budget.tools.travel.world import TravelWorld

    world = TravelWorld(Scenario.from_dict(task.input))
    _WORLDS.clear()  # one run at a time in a worker process: forget an unfinished one
    _WORLDS[task.id] = world
    return world


def planner_agent(model: Any, task: Task, language: str = "plan-only") -> Any:
    """The travel agent's graph over the task's scenario (the runner budgets it)."""
    from agent_budget.agents.travel.graph import build_graph

    return build_graph(_world(task), model, language=language)  # type: ignore[arg-type]


def react_agent(model: Any, task: Task) -> Any:
    """A ReAct agent over every tool the scenario may ever have (the baselines): whether it
    sees the budget message and is held to the scenario's USD is the configuration's
    ``budget`` and ``task_budget`` (see the module's example)."""
    from agent_budget.agents.travel.baselines import react_graph

    return react_graph(_world(task), model)
