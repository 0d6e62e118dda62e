"""The ``long_document`` task set in the evaluation harness: delegation modes swept by budget.

A tiny sweep (one needle question, two budgets, MinionS vs remote_only) runs inline through
`run_sweep`, the local side on the shipped SmolLM2 and the remote side real HTTP to an
endpoint on 127.0.0.1 that answers by what it is asked (plan, synthesis, or the whole
document), billed at a cloud price.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest_delegation import Scripted, cloud_price

from agent_budget.bench.errors import InvalidSweep
from agent_budget.bench.runner import run_sweep
from agent_budget.bench.tasks import load_task_set

PLAN = json.dumps(
    {
        "tasks": [{"task": "Find the access code", "advice": "a number", "keywords": ["code"]}],
        "chunking": {"by": "paragraphs", "size": 1200, "overlap": 0},
    }
)
DECISION = json.dumps({"decision": "answer", "answer": "7391", "feedback": ""})


def cloud(body: dict[str, Any]) -> str:
    system = str(body["messages"][0]["content"])
    if "job plan" in system:
        return PLAN
    if "findings" in system:
        return DECISION
    return "The access code is 7391."  # remote_only: it was sent the whole document


def test_the_set_is_registered_and_checks_its_parameters() -> None:
    tasks = load_task_set({"set": "long_document", "sizes": [2000], "needles": 2, "pydoc": 1})
    assert [t.id for t in tasks.tasks] == ["needle2000-0", "needle2000-1", "pydoc-0"]
    graph_input = tasks.graph_input(tasks.tasks[0])
    assert graph_input["document"] == {"kind": "needle", "tokens": 2000, "seed": 0}
    assert tasks.score(tasks.tasks[0], "It is 7391.").passed
    with pytest.raises(InvalidSweep, match=r"tasks\.needles"):
        load_task_set({"set": "long_document", "needles": 9})
    with pytest.raises(InvalidSweep, match=r"tasks\.sizes"):
        load_task_set({"set": "long_document", "sizes": [10]})


@pytest.mark.local_model
def test_a_tiny_sweep_of_minions_and_remote_only_by_budget(
    scripted: Scripted, tmp_path: Path
) -> None:
    scripted.respond = cloud
    price = [str(p) for p in cloud_price()]
    remote = {
        "model": "openai/scripted",
        "api_base": scripted.base,
        "price": price,
        "model_options": {"max_retries": 0},
    }
    agent = "agent_budget.bench.long_document:delegation_agent"
    options = {"max_rounds": 1, "max_jobs": 1, "max_chunk": 1200, "local_max_tokens": 48}
    spec = {
        "name": "long-doc",
        "tasks": {"set": "long_document", "sizes": [3000], "needles": 1, "pydoc": 0},
        # The small budget cannot pay a MinionS round nor the whole document; the large one
        # pays both.
        "budgets": [0.0001, 0.01],
        "configs": [
            {
                "name": "minions",
                "agent": agent,
                **remote,
                "options": {"mode": "minions", **options},
            },
            {"name": "remote-only", "agent": agent, **remote,
             "options": {"mode": "remote_only"}},
        ],
    }  # fmt: skip
    run = run_sweep(spec, tmp_path / "out", backend="inline")
    cells = {(r["config"], r["budget"]): r for r in run.results}
    assert len(cells) == 4
    assert all(r["status"] == "ok" and r["overruns"] == [] for r in run.results), run.results
    for config in ("minions", "remote-only"):
        low = cells[(config, "usd=0.0001")]
        assert not low["passed"] and Decimal(low["usd"]) == 0 and low["model_calls"] == 0
    rich_minions, rich_remote = cells[("minions", "usd=0.01")], cells[("remote-only", "usd=0.01")]
    assert rich_minions["passed"] and rich_remote["passed"]
    # MinionS: two cloud calls and the local job beside them; the cloud read only the plan
    # and the findings, so it cost less than sending the whole document.
    assert rich_minions["model_calls"] == 2
    assert rich_remote["model_calls"] == 1
    assert 0 < Decimal(rich_minions["usd"]) < Decimal(rich_remote["usd"]) <= Decimal("0.01")
    assert "local:smollm2-135m" in rich_minions["tokens_by_model"]
