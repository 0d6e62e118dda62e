"""The travel task set through the evaluation harness: seeded and replayable, every task
carrying its scenario's own money and prices, the planner agent and both ReAct baselines run
on the same tasks (a LiteLLM mock model at the network edge: no network, no weights)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent_budget.agents.travel.bench import KINDS
from agent_budget.bench import load_task_set, run_sweep
from agent_budget.tools.travel import Scenario, optimal_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
MOCK = {"max_tokens": 40, "model_kwargs": {"mock_response": "Here is your trip: Kyoto."}}


def test_the_task_set_is_seeded_covers_every_kind_and_replays() -> None:
    a = load_task_set({"set": "travel", "per_kind": 3})
    assert a.fingerprint() == load_task_set({"set": "travel", "per_kind": 3}).fingerprint()
    assert [t.meta["kind"] for t in a.tasks] == [k for k in KINDS for _ in range(3)]
    for task in a.tasks:
        scenario = Scenario.from_dict(task.input)  # the task is a replayable scenario file
        best = optimal_run(scenario)
        assert [c.tool for c in best.executed] == task.expected["path"]
        assert task.budget["usd"] == str(scenario.budget)
        assert set(task.budget["prices"]) >= {t.name for t in scenario.all_tools()}
        kind = task.meta["kind"]
        assert [e.type for e in scenario.events] == ([] if kind == "static" else [kind])


def test_interleaved_tasks_take_the_kinds_in_turns() -> None:
    kinds = load_task_set({"set": "travel", "per_kind": 2})
    turns = load_task_set({"set": "travel", "per_kind": 2, "interleave": True})
    assert [t.id for t in turns.tasks] == [f"{k}-{i:03d}" for i in range(2) for k in KINDS]
    assert sorted(t.id for t in turns.tasks) == sorted(t.id for t in kinds.tasks)


def sweep(per_kind: int) -> dict[str, Any]:
    agent = "agent_budget.agents.travel.bench"
    return {
        "name": "travel-mock",
        "tasks": {"set": "travel", "per_kind": per_kind},
        "budgets": [{"label": "scenario"}],
        "configs": [
            {"name": "planner", "agent": f"{agent}:planner_agent",
             "model": "openai/gpt-4.1-mini", "model_options": MOCK},
            {"name": "react", "agent": f"{agent}:react_agent", "model": "openai/gpt-4.1-mini",
             "model_options": MOCK, "task_budget": ["prices"],
             "budget": {"message_template": " ", "model_calls": 4}},
            {"name": "react_budget", "agent": f"{agent}:react_agent",
             "model": "openai/gpt-4.1-mini", "model_options": MOCK,
             "budget": {"model_calls": 4, "on_exhausted": "finalize"}},
        ],
    }  # fmt: skip


def test_the_three_agents_run_the_same_tasks_through_the_harness(tmp_path: Path) -> None:
    done = run_sweep(sweep(1), tmp_path / "out", backend="inline")
    assert len(done.results) == 3 * len(KINDS)
    rows = {(r["config"], r["task"]): r for r in done.results}
    tasks = load_task_set({"set": "travel", "per_kind": 1}).tasks
    for task in tasks:
        planner = rows[("planner", task.id)]
        facts = json.loads(planner["detail"])
        assert planner["passed"] and facts["exact"] and not facts["overrun"], planner
        assert Decimal(str(facts["paid"])) == Decimal(task.expected["paid"])
        assert planner["score"] == 1.0 and planner["overruns"] == []
        # the run's own budget was the scenario's: the planner's tools were charged from it
        assert Decimal(planner["usd"]) >= Decimal(task.expected["paid"])
        for name in ("react", "react_budget"):  # a mock that answers in prose calls nothing
            row = rows[(name, task.id)]
            facts = json.loads(row["detail"])
            assert not row["passed"] and facts["calls"] == 0 and not facts["overrun"], row
            assert row["input_tokens"] > 0
    # resuming runs nothing again
    again = run_sweep(sweep(1), tmp_path / "out", backend="inline")
    assert again.ran == 0 and again.resumed == len(done.results)
