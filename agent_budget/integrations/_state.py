"""Where a budgeted graph keeps its budget: the run in the config, the spend in state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from langchain_core.messages import BaseMessage
from langgraph.config import get_config
from langgraph.types import Command

from agent_budget.run import OWNER, BudgetRun
from agent_budget.snapshot import BudgetSnapshot, latest

SPEND_KEY = "agent_budget"
"""Graph-state key holding the spend snapshot (persisted by the checkpointer)."""
RUN_KEY = "__agent_budget_run"
"""``config["configurable"]`` key of the run's `BudgetRun`."""


class BudgetChannel(TypedDict, total=False):
    """The state key a budgeted graph adds: put it in your own state schema to compose
    the building blocks yourself."""

    agent_budget: Annotated[BudgetSnapshot | None, latest]


def run_of(config: Mapping[str, Any] | None) -> BudgetRun | None:
    run = ((config or {}).get("configurable") or {}).get(RUN_KEY)
    return run if isinstance(run, BudgetRun) else None


def current_run() -> BudgetRun | None:
    """The budget run this code executes in (inside a node, a tool, or a model called
    from one), or None outside a budgeted run."""
    try:
        run = run_of(get_config())
    except RuntimeError:  # called outside a graph run
        run = None
    return run or OWNER.get()


def node_name() -> str | None:
    try:
        return (get_config().get("metadata") or {}).get("langgraph_node")
    except RuntimeError:
        return None


def snapshot(run: BudgetRun) -> BudgetSnapshot:
    snap = run.tracker.snapshot()
    snap["run"] = run.run_id
    return snap


def messages_of(state: Any, key: str) -> list[BaseMessage]:
    if isinstance(state, dict):
        return state.get(key) or []
    return getattr(state, key, None) or []


def with_spend(run: BudgetRun, out: Any, seq: int) -> Any:
    """A node's output with the spend added when it spent something (``seq`` moved): a
    dict update, or a ``Command``'s update. Other outputs (lists, pydantic state) are left
    as they are; the next node that spends writes the snapshot."""
    if run.tracker.seq == seq or not run.persist:
        return out
    if isinstance(out, dict):
        return {**out, SPEND_KEY: snapshot(run)}
    if isinstance(out, Command) and (out.update is None or isinstance(out.update, dict)):
        update = {**(out.update or {}), SPEND_KEY: snapshot(run)}
        return Command(graph=out.graph, update=update, resume=out.resume, goto=out.goto)
    return out
