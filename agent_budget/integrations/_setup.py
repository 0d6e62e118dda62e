"""Starting a run's budget, the same for `with_budget` and `BudgetMiddleware`: continue the
thread's spend (or start over for a run-scoped budget), spend as a child of a calling
budgeted run, bind the ledger, and give the run its stable id."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from agent_budget.budget import Budget
from agent_budget.run import CALL, BudgetRun, Retry, WarningCallback
from agent_budget.snapshot import BudgetSnapshot
from agent_budget.tracker import BudgetTracker


def emit(event: dict[str, Any]) -> None:
    """Send an event to the graph's ``stream_mode="custom"`` stream, when inside a graph."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except (RuntimeError, ImportError):  # not inside a graph run
        pass


def start_run(
    budget: Budget | None,
    config: Mapping[str, Any],
    *,
    saved: BudgetSnapshot | None,
    resuming: bool,
    parent: BudgetRun | None,
    name: str | None,
    retry: Retry | None,
    on_warning: WarningCallback | None,
) -> tuple[BudgetRun, Any]:
    """The run, and the callbacks to run it with (a child drops its parent's handler)."""
    from agent_budget.integrations.callbacks import without_budget_handlers
    from agent_budget.ledger import attach_ledger  # light: no driver unless configured

    configurable = config.get("configurable") or {}
    callbacks = config.get("callbacks")
    if parent is not None:
        # A budgeted graph inside a budgeted run (a subgraph node, a Send target, a
        # sub-agent called by a tool) spends from the parent's budget as a child; with
        # no budget of its own, as a child with the parent's prices and no own limits.
        child = (budget and budget.name) or name or "subgraph"
        own = budget or parent.tracker.budget.child(child)
        tracker = parent.tracker.child(child, own, reuse=True)
        # Keys stable across resumes and distinct per call: the calling tool call's key
        # (or the subgraph's task namespace) names this run.
        where = CALL.get() or configurable.get("checkpoint_ns") or uuid.uuid4().hex
        run_id = f"{where}/{child}"
        callbacks = without_budget_handlers(callbacks)
    else:
        given = configurable.get("budget_tracker")
        chosen = Budget.from_config(config) or budget or Budget.from_env()
        if isinstance(given, BudgetTracker):
            tracker = given
        else:
            fresh = chosen.scope == "run" and not resuming
            tracker = BudgetTracker.restore(chosen, saved, fresh=fresh)
        # The same id while an interrupted run is resumed: its calls keep their keys.
        kept = saved.get("run") if resuming and saved else None
        run_id = str(kept or config.get("run_id") or configurable.get("run_id") or uuid.uuid4().hex)
        attach_ledger(tracker, config, run_id=run_id)
    run = BudgetRun(tracker, retry=retry, run_id=run_id, on_warning=on_warning, emit=emit)
    stopped_at = saved.get("stopped_at") if resuming and saved else None
    if stopped_at:  # resuming a stop: a top-up goes on at the node that stopped
        run.resume_to = [stopped_at]
    return run, callbacks
