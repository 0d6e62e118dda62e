"""What a checkpointed thread has spent, for any budgeted graph: a `with_budget` graph or a
`create_agent` agent with `BudgetMiddleware` (both keep the spend under the same state key);
and keeping it there when a run raises."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from agent_budget.integrations._state import SPEND_KEY, run_of, snapshot
from agent_budget.run import BudgetRun
from agent_budget.tracker import Spend


def get_spend(graph: Any, config: RunnableConfig) -> Spend | None:
    """The spend recorded on ``config``'s thread by ``graph``'s checkpointer; None when the
    graph has no checkpointer or the thread has no spend yet."""
    from agent_budget.integrations.langgraph import _checkpoint_config, _newest_spend

    checkpointer = getattr(graph, "checkpointer", None)
    if checkpointer in (None, True, False):
        return None
    saved = _newest_spend(checkpointer.get_tuple(_checkpoint_config(config)))
    return Spend.from_dict(dict(saved["spent"])) if saved else None


def keep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    """Record the run's spend on its thread when the run raised (`BudgetExceeded` from a
    node or a subgraph, any crash): the writes of a node that raises are lost, and with
    them the spend it carried, so a resume would pay for the same calls again. It goes in
    as a pending write of the thread's latest checkpoint, under a task id LangGraph runs no
    task for; `_newest_spend` reads it back on resume."""
    run = _keeps_spend(checkpointer, config)
    from agent_budget.integrations.langgraph import _checkpoint_config

    saved = checkpointer.get_tuple(_checkpoint_config(config)) if run else None
    if run is not None and saved is not None:
        checkpointer.put_writes(saved.config, [(SPEND_KEY, snapshot(run))], SPEND_TASK_ID)


async def akeep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    from agent_budget.integrations.langgraph import _checkpoint_config

    run = _keeps_spend(checkpointer, config)
    if run is None:
        return
    try:
        saved = await checkpointer.aget_tuple(_checkpoint_config(config))
        if saved is not None:
            await checkpointer.aput_writes(
                saved.config, [(SPEND_KEY, snapshot(run))], SPEND_TASK_ID
            )
    except NotImplementedError:  # a sync-only checkpointer
        keep_spend_after_error(checkpointer, config)


SPEND_TASK_ID = "agent_budget:spend-after-error"


def _keeps_spend(checkpointer: Any, config: RunnableConfig) -> BudgetRun | None:
    run = run_of(config)
    if run is None or checkpointer in (None, True, False) or not run.persist:
        return None
    configurable = config.get("configurable") or {}
    if configurable.get("thread_id") is None or configurable.get("checkpoint_ns"):
        return None  # a subgraph's run: its parent keeps the thread's spend
    return run
