"""The sweeps the harness tests run: a fast one (planner problems, no model) and the
embedded-model one (router questions on SmolLM2). A module of its own, not conftest: test
directories each have a conftest, and ``import conftest`` would find whichever came first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def planner_sweep(**overrides: Any) -> dict[str, Any]:
    """12 tasks (2 example problems + generated ones with failures) x 3 budgets x 2 planners
    x 2 seeds = 144 units, each a few milliseconds; costs are the problems' tool prices."""
    spec: dict[str, Any] = {
        "name": "planner",
        "tasks": {
            "set": "planner",
            "paths": [str(ROOT / "examples/problems/travel.json"),
                      str(ROOT / "examples/problems/infeasible.json")],
            "generate": {"tools": [8, 12, 16], "seeds": [0, 1], "failure_rate": 0.3},
        },
        "budgets": [4, 10, 40],
        "seeds": [0, 1],
        "configs": [
            {"name": "exact", "agent": "agent_budget.bench.agents:planner_agent",
             "options": {"method": "exact"}},
            {"name": "cats", "agent": "agent_budget.bench.agents:planner_agent",
             "options": {"method": "cats"}},
        ],
    }  # fmt: skip
    spec.update(overrides)
    return spec


LOCAL_OPTIONS = {"max_tokens": 12, "n_ctx": 1024, "n_threads": 1}


def local_sweep(**overrides: Any) -> dict[str, Any]:
    """3 budgets x 2 configurations x 3 questions on the embedded model, priced like
    gpt-4.1-mini so the budgets bite: the smallest pays for no answer, the middle one for a
    plain answer only, the largest for the few-shot prompt too."""
    spec: dict[str, Any] = {
        "name": "local-qa",
        "tasks": {"set": "questions", "limit": 3},
        "budgets": [0.00002, 0.00004, 0.0001],
        "global_cap_usd": 0.01,
        "workers": 2,
        "configs": [
            {"name": "direct", "agent": "agent_budget.bench.agents:direct_answer",
             "model": "local:smollm2-135m", "price": [0.40, 1.60],
             "model_options": LOCAL_OPTIONS},
            {"name": "few-shot", "agent": "agent_budget.bench.agents:direct_answer",
             "model": "local:smollm2-135m", "price": [0.40, 1.60],
             "model_options": LOCAL_OPTIONS,
             "options": {
                 "system": "Answer with the single word or number that answers the question.",
                 "examples": [["What is the capital of Portugal?", "Lisbon"],
                              ["What is 3 + 5?", "8"]]}},
        ],
    }  # fmt: skip
    spec.update(overrides)
    return spec
