"""Tasks that carry their own budget fields (prices, USD) merged onto the sweep point's
budget: each run is held to its task's money, a configuration can take only some of those
fields, a bad one is refused before anything is spent, and the global cap sees each task's
worst case."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent_budget.bench import InvalidSweep, Task, TaskSet, load_task_set, preflight, run_sweep
from agent_budget.bench.config import AgentConfig, BudgetPoint, budget_for, load_sweep


def sweep(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "own",
        "tasks": {"set": "tiny_tasks:own_budgets"},
        "budgets": [{"label": "task", "reserve_usd": 0}],
        "configs": [
            {"name": "own", "agent": "agent_budget.bench.agents:planner_agent"},
            {"name": "point", "agent": "agent_budget.bench.agents:planner_agent",
             "task_budget": [], "budget": {"usd": 40}},
        ],
    }  # fmt: skip
    spec.update(over)
    return spec


def test_each_run_is_held_to_its_tasks_own_usd(tmp_path: Path) -> None:
    done = run_sweep(sweep(), tmp_path / "out", backend="inline")
    got = {(r["config"], r["task"]): r for r in done.results}
    # $4 of its own: no plan fits, nothing is spent; $40: the goal is reached
    assert not got[("own", "poor")]["passed"] and got[("own", "poor")]["usd"] == "0"
    assert "infeasible" in got[("own", "poor")]["detail"]
    assert got[("own", "rich")]["passed"]
    from agent_budget.planners import execute

    best = execute(Path(__file__).resolve().parents[2] / "examples/problems/travel.json", "exact")
    assert Decimal(got[("own", "rich")]["usd"]) == best.paid
    # task_budget: [] takes none of them: the configuration's $40 applies to both
    assert got[("point", "poor")]["passed"] and got[("point", "rich")]["passed"]
    assert all(r["overruns"] == [] for r in done.results)


def test_fields_merge_mappings_key_by_key_and_a_config_can_take_some() -> None:
    task = Task("t", "x", budget={"usd": "2", "prices": {"search": "0.5"}})
    point = BudgetPoint("p", {"usd": Decimal(1), "prices": {"fetch": "0.1"}}, Decimal(1))
    cfg = AgentConfig(name="c", agent="m:f", budget={"prices": {"search": "9"}})
    assert budget_for(cfg, point, task) == {
        "usd": "2", "prices": {"fetch": "0.1", "search": "0.5"},
    }  # fmt: skip
    only_prices = cfg.model_copy(update={"task_budget": ["prices"]})
    assert budget_for(only_prices, point, task)["usd"] == Decimal(1)
    assert budget_for(cfg, point) == {"usd": Decimal(1), "prices": {"fetch": "0.1"}}


def test_a_bad_task_budget_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import tiny_tasks

    def bad() -> TaskSet:
        good = tiny_tasks.own_budgets().tasks[1]
        return TaskSet("bad", [good, Task("neg", good.input, budget={"usd": "-1"})])

    from agent_budget.bench.tasks import register_task_set

    register_task_set("bad-own", bad)
    with pytest.raises(InvalidSweep, match="task 'neg'"):
        preflight(load_sweep(sweep(tasks={"set": "bad-own"})))


def test_the_global_cap_counts_each_tasks_own_worst_case(tmp_path: Path) -> None:
    spec = sweep(global_cap_usd=30, configs=sweep()["configs"][:1])
    checked = preflight(load_sweep(spec))
    assert {u.task: checked.worst(u) for u in checked.units} == {
        "poor": Decimal(4), "rich": Decimal(40),
    }  # fmt: skip
    done = run_sweep(spec, tmp_path / "out", backend="inline")
    rich = next(r for r in done.results if r["task"] == "rich")
    assert rich["status"] == "refused" and "the run may spend $40" in rich["detail"]
    with pytest.raises(InvalidSweep, match="too small for even one run"):
        preflight(load_sweep(sweep(global_cap_usd=3)))


def test_tasks_without_a_budget_fingerprint_as_before() -> None:
    made = load_task_set({"set": "questions", "limit": 2})
    h = hashlib.sha256(b"questions")
    for t in made.tasks:
        h.update(json.dumps([t.id, t.input, t.expected], default=str).encode())
    assert made.fingerprint() == h.hexdigest()[:16]
    own = load_task_set({"set": "tiny_tasks:own_budgets"})
    changed = TaskSet(own.name, [own.tasks[0], Task("rich", own.tasks[1].input,
                      own.tasks[1].expected, budget={"usd": "41"})])  # fmt: skip
    assert changed.fingerprint() != own.fingerprint()
