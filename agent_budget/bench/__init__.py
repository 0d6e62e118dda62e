"""The evaluation harness: run task sets against agent configurations over budget sweeps.

    from agent_budget.bench import run_sweep, write_outputs
    done = run_sweep("sweep.yaml", "out/")              # resumable; a global cap holds
    write_outputs(done.out, done.spec, done.results)     # table, JSON/CSV, Markdown, PNGs

Task sets plug in with `register_task_set`; metrics (`cost_of_pass`, `pareto_frontier`) are
plain functions. Nothing heavy is imported until used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Task": "agent_budget.bench.tasks",
    "TaskSet": "agent_budget.bench.tasks",
    "Score": "agent_budget.bench.tasks",
    "register_task_set": "agent_budget.bench.tasks",
    "load_task_set": "agent_budget.bench.tasks",
    "task_set_names": "agent_budget.bench.tasks",
    "InvalidSweep": "agent_budget.bench.errors",
    "SweepMismatch": "agent_budget.bench.errors",
    "SweepSpec": "agent_budget.bench.config",
    "load_sweep": "agent_budget.bench.config",
    "run_sweep": "agent_budget.bench.runner",
    "preflight": "agent_budget.bench.runner",
    "SweepRun": "agent_budget.bench.runner",
    "cost_of_pass": "agent_budget.bench.metrics",
    "pareto_frontier": "agent_budget.bench.metrics",
    "write_outputs": "agent_budget.bench.report",
    "compare": "agent_budget.bench.report",
}

__all__ = [
    "InvalidSweep",
    "Score",
    "SweepMismatch",
    "SweepRun",
    "SweepSpec",
    "Task",
    "TaskSet",
    "compare",
    "cost_of_pass",
    "load_sweep",
    "load_task_set",
    "pareto_frontier",
    "preflight",
    "register_task_set",
    "run_sweep",
    "task_set_names",
    "write_outputs",
]

if TYPE_CHECKING:
    from agent_budget.bench.config import SweepSpec, load_sweep
    from agent_budget.bench.errors import InvalidSweep, SweepMismatch
    from agent_budget.bench.metrics import cost_of_pass, pareto_frontier
    from agent_budget.bench.report import compare, write_outputs
    from agent_budget.bench.runner import SweepRun, preflight, run_sweep
    from agent_budget.bench.tasks import (
        Score,
        Task,
        TaskSet,
        load_task_set,
        register_task_set,
        task_set_names,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_budget.bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
