"""The travel scenarios as a task set of the evaluation harness (`agent_budget.bench`).

    tasks: {set: travel, per_kind: 4, kinds: [static, ban_tool]}
    configs:
      - {name: planner, agent: "agent_budget.tools.travel.bench:planner_agent"}

The sweep's budget is the trip's tool budget (as in the ``planner`` set); a task passes when
the goal is reached, and its score is optimal cost / paid (1.0 on the optimum). The detail
says whether the executed path is exactly the replanning exact planner's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.tasks import Judge, Score, Task, TaskSet

KINDS = ("static", "ban_tool", "cost_change", "preference_change", "tools_change")


class TravelTasks(TaskSet):
    """Each task's input is a scenario (plain data); the answer is the execution JSON."""

    def graph_input(self, task: Task) -> dict[str, Any]:
        return {"messages": [("user", task.input["request"])]}

    def answer(self, state: Any) -> str:
        from agent_budget.tools.travel.agent import plan_json

        return json.dumps(plan_json(state), sort_keys=True)


def score_trip(task: Task, answer: str, judge: Judge | None = None) -> Score:
    run = json.loads(answer) if answer else {}
    if not run.get("goal_reached"):
        return Score(False, 0.0, f"goal not reached ({run.get('status')}: {run.get('reason')})")
    optimal, path = task.expected["paid"], task.expected["path"]
    paid = float(run.get("paid") or 0)
    exact = [c["tool"] for c in run["executed"]] == path
    value = min(1.0, optimal / paid) if paid else 1.0
    return Score(True, value, f"exact_match={exact} paid={paid} optimal={optimal}")


def travel_tasks(per_kind: int = 4, kinds: Sequence[str] = KINDS, seed: int = 1000) -> TaskSet:
    """``per_kind`` generated scenarios for each of ``kinds`` (static or an event kind)."""
    from agent_budget.tools.travel.generate import generate_scenario, optimal_run

    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise InvalidSweep(f"tasks.kinds: unknown {unknown}; use {', '.join(KINDS)}")
    tasks = []
    for kind in kinds:
        for i in range(per_kind):
            s = generate_scenario(
                seed + KINDS.index(kind) * 1000 + i, event=None if kind == "static" else kind
            )
            best = optimal_run(s)
            expected = {"paid": float(best.paid), "path": [c.tool for c in best.executed]}
            tasks.append(Task(f"{kind}-{i}", json.loads(s.to_json()), expected, {"kind": kind}))
    return TravelTasks("travel", tasks, score_trip)


def planner_agent(model: Any, task: Task, language: str = "plan-only") -> Any:
    """The travel agent's graph over the task's scenario (the runner budgets it)."""
    from agent_budget.tools.travel.agent import build_graph
    from agent_budget.tools.travel.scenario import Scenario
    from agent_budget.tools.travel.world import TravelWorld

    world = TravelWorld(Scenario.from_dict(task.input))
    return build_graph(world, model, language=language)  # type: ignore[arg-type]
