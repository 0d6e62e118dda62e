"""What a checkpointed thread has spent, for any budgeted graph: a `with_budget` graph or a
`create_agent` agent with `BudgetMiddleware` (both keep the spend under the same state key);
and keeping it there when a run raises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig

from agent_budget._steps import Steps, adrive, drive
from agent_budget.integrations._state import SPEND_KEY, run_of, snapshot
from agent_budget.integrations._tool_charges import charged_outside_state
from agent_budget.run import BudgetRun
from agent_budget.snapshot import BudgetSnapshot, latest
from agent_budget.tracker import Spend


def get_spend(graph: Any, config: RunnableConfig) -> Spend | None:
    """The spend recorded on ``config``'s thread by ``graph``'s checkpointer; None when the
    graph has no checkpointer or the thread has no spend yet."""
    checkpointer = getattr(graph, "checkpointer", None)
    if checkpointer in (None, True, False):
        return None
    saved = newest_spend(checkpointer.get_tuple(checkpoint_config(config)))
    return Spend.from_dict(dict(saved["spent"])) if saved else None


# Reading and writing a thread's checkpoint is written once, as steps (`agent_budget._steps`)
# that yield ``((checkpointer, method, *args), {})``; `checkpoint_io` makes the call in a
# sync run, `acheckpoint_io` in an async one.


def checkpoint_io(checkpointer: Any, method: str, *args: Any) -> Any:
    return getattr(checkpointer, method)(*args)


async def acheckpoint_io(checkpointer: Any, method: str, *args: Any) -> Any:
    try:
        return await getattr(checkpointer, "a" + method)(*args)
    except NotImplementedError:  # a sync-only checkpointer
        return getattr(checkpointer, method)(*args)


def saved_spend_steps(
    checkpointer: Any, config: RunnableConfig | None
) -> Steps[BudgetSnapshot | None]:
    """The spend ``config``'s thread holds (None: no checkpointer, no thread, no spend)."""
    thread = ((config or {}).get("configurable") or {}).get("thread_id")
    if checkpointer in (None, True, False) or thread is None:
        return None
    return newest_spend((yield (checkpointer, "get_tuple", checkpoint_config(config)), {}))


def keep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    """Record the run's spend on its thread when the run raised (`BudgetExceeded` from a
    node or a subgraph, any crash): the writes of a node that raises are lost, and with
    them the spend it carried, so a resume would pay for the same calls again. It goes in
    as a pending write of the thread's latest checkpoint, under a task id LangGraph runs no
    task for; `newest_spend` reads it back on resume."""
    drive(_keep_steps(checkpointer, config), checkpoint_io)


async def akeep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    await adrive(_keep_steps(checkpointer, config), acheckpoint_io)


def _keep_steps(checkpointer: Any, config: RunnableConfig) -> Steps[None]:
    run = _keeps_spend(checkpointer, config)
    if run is None:
        return
    saved = yield (checkpointer, "get_tuple", checkpoint_config(config)), {}
    if saved is not None:
        writes = [(SPEND_KEY, snapshot(run))]
        yield (checkpointer, "put_writes", saved.config, writes, SPEND_TASK_ID), {}


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
    if run is not None and drive(_lagging(run, resuming, checkpointer, config), checkpoint_io):
        keep_spend_after_error(checkpointer, config)


async def akeep_if_lagging(checkpointer: Any, config: RunnableConfig, resuming: bool) -> None:
    """At the end of an async run: `kept`'s check (``astream`` keeps the spend of a run that
    raises itself)."""
    run = run_of(config)
    if run is None or not keeps_spend(checkpointer, config):
        return
    if await adrive(_lagging(run, resuming, checkpointer, config), acheckpoint_io):
        await akeep_spend_after_error(checkpointer, config)


def _lagging(
    run: BudgetRun, resuming: bool, checkpointer: Any, config: RunnableConfig
) -> Steps[bool]:
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
    saved = yield (checkpointer, "get_tuple", checkpoint_config(config)), {}
    value = _channel_spend(saved)
    return value is None or int(value.get("seq", -1)) < run.tracker.seq


def _channel_spend(saved: Any) -> Any:
    return None if saved is None else saved.checkpoint["channel_values"].get(SPEND_KEY)


def newest_spend(saved: Any) -> BudgetSnapshot | None:
    """The thread's spend: the checkpoint's, or newer from writes of an interrupted step
    (tasks that finished before the interrupt keep their writes and are not run again)."""
    if saved is None:
        return None
    best: BudgetSnapshot | None = saved.checkpoint["channel_values"].get(SPEND_KEY)
    for _task, channel, value in saved.pending_writes or ():
        if channel == SPEND_KEY and isinstance(value, dict):
            best = latest(best, value)  # type: ignore[arg-type]
    return best


def checkpoint_config(config: RunnableConfig | None) -> RunnableConfig:
    configurable = (config or {}).get("configurable") or {}
    keep: dict[str, Any] = {
        k: configurable[k]
        for k in ("thread_id", "checkpoint_ns", "checkpoint_id")
        if k in configurable
    }
    return RunnableConfig(configurable=keep)
