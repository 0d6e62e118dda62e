"""What a checkpointed thread has spent, for any budgeted graph: a `with_budget` graph or a
`create_agent` agent with `BudgetMiddleware` (both keep the spend under the same state key);
and keeping it there when a run raises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig

from agent_budget.integrations._state import SPEND_KEY, run_of, snapshot
from agent_budget.integrations._tool_charges import charged_outside_state
from agent_budget.run import BudgetRun
from agent_budget.tracker import Spend


def get_spend(graph: Any, config: RunnableConfig) -> Spend | None:
    """The spend recorded on ``config``'s thread by ``graph``'s checkpointer; None when the
    graph has no checkpointer or the thread has no spend yet."""
    from agent_budget.integrations._budgeted_graph import _checkpoint_config, _newest_spend

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
    from agent_budget.integrations._budgeted_graph import _checkpoint_config

    saved = checkpointer.get_tuple(_checkpoint_config(config)) if run else None
    if run is not None and saved is not None:
        checkpointer.put_writes(saved.config, [(SPEND_KEY, snapshot(run))], SPEND_TASK_ID)


async def akeep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    from agent_budget.integrations._budgeted_graph import _checkpoint_config

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


def keeps_spend(checkpointer: Any, config: RunnableConfig) -> bool:
    """Whether a run has a thread to keep its spend on (else no wrapper is worth its cost)."""
    return _keeps_spend(checkpointer, config) is not None


def kept(
    chunks: Iterator[Any], checkpointer: Any, config: RunnableConfig, resuming: bool
) -> Iterator[Any]:
    """LangGraph's sync stream (which `invoke` runs through too), keeping the run's spend on
    its thread when the run raises, and when it ends with spend that no node output
    carried (`_lagging`)."""
    try:
        yield from chunks
    except Exception:
        keep_spend_after_error(checkpointer, config)
        raise
    run = run_of(config)
    if run is not None and _lagging(run, resuming, lambda: _latest(checkpointer, config)):
        keep_spend_after_error(checkpointer, config)


async def akeep_if_lagging(checkpointer: Any, config: RunnableConfig, resuming: bool) -> None:
    """At the end of an async run: `kept`'s check (``astream`` keeps the spend of a run that
    raises itself)."""
    run = run_of(config)
    if run is None or not keeps_spend(checkpointer, config):
        return
    latest_value: Any = None
    if resuming:
        from agent_budget.integrations._budgeted_graph import _checkpoint_config

        try:
            saved = await checkpointer.aget_tuple(_checkpoint_config(config))
        except NotImplementedError:
            saved = checkpointer.get_tuple(_checkpoint_config(config))
        latest_value = _channel_spend(saved)
    if _lagging(run, resuming, lambda: latest_value):
        await akeep_spend_after_error(checkpointer, config)


def _lagging(run: BudgetRun, resuming: bool, in_state: Any) -> bool:
    """Whether the thread's state lacks spend the run has on its books:

    - a node paid for tools it ran itself and may not have returned (an ``interrupt()``
      after the calls): its output, which carries the spend, is lost;
    - a resumed run that spent nothing new: its spend came from a write kept after an
      error or an interrupt, which no checkpoint of the resumed run holds in its state.

    (Checked at the end of a run: the second costs a checkpoint read, on resumes only.)"""
    if charged_outside_state(run):
        return True
    if not resuming:
        return False
    value = in_state()
    return value is None or int(value.get("seq", -1)) < run.tracker.seq


def _latest(checkpointer: Any, config: RunnableConfig) -> Any:
    from agent_budget.integrations._budgeted_graph import _checkpoint_config

    return _channel_spend(checkpointer.get_tuple(_checkpoint_config(config)))


def _channel_spend(saved: Any) -> Any:
    return None if saved is None else saved.checkpoint["channel_values"].get(SPEND_KEY)
