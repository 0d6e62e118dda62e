"""How a budgeted graph stops from anywhere: a refused model call in any node, a sub-agent
that stopped, parallel nodes refused in the same step.

Once the run must stop it goes to ``budget_finalize`` (one final answer per run) and
nothing else is paid for but the graph's own answer nodes ahead (`AnswerPath`): the
refused node sends the run there with a ``Command``, nodes still scheduled do nothing,
and every conditional edge leads there without asking the user's router (which may not
cope with a state the refused node never wrote: the react-agent template's router raises
on a last message that is not an AIMessage).
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.types import Command

from agent_budget.integrations._answer_path import note_stop
from agent_budget.integrations._private import RunnableCallable
from agent_budget.integrations._state import SPEND_KEY, run_of, snapshot
from agent_budget.integrations.tool_node import FINALIZE_NODE
from agent_budget.run import BudgetRun
from agent_budget.stopping import StopReason


def refused(run: BudgetRun, reason: StopReason) -> Command[Any]:
    """What a node whose model call was refused returns (``on_exhausted`` already said
    finalize): the run goes to its final answer, whatever the node's own edges say."""
    run.stop = run.stop or reason
    run.decided = True
    note_stop(run)  # the answer nodes ahead of it still run (`AnswerPath`)
    update = {SPEND_KEY: snapshot(run)} if run.persist else None
    return Command(update=update, goto=FINALIZE_NODE)


def answered(run: BudgetRun, reason: StopReason, out: Any) -> Command[Any]:
    """What a node returns that wrote the graph's answer as the run's final call: its own
    output, and the run ends (``budget_finalize`` finds the answer written)."""
    run.stop = run.stop or reason
    run.decided = True
    if isinstance(out, Command):
        return Command(graph=out.graph, update=out.update, goto=FINALIZE_NODE)
    return Command(update=out, goto=FINALIZE_NODE)


def after_node(run: BudgetRun, out: Any) -> Any:
    """A node's output; to ``budget_finalize`` as well when the run must stop now (a
    sub-agent in this node stopped on the limits this run spends from)."""
    if run.stop is None:
        return out
    run.decided = True
    note_stop(run)
    if isinstance(out, Command):
        if out.graph is not None:
            return out  # a handoff to the parent graph: the parent decides
        return Command(update=out.update, goto=FINALIZE_NODE)
    return Command(update=out, goto=FINALIZE_NODE)


def stop_first(path: Runnable[Any, Any], name: str | None = None) -> Runnable[Any, Any]:
    """``path`` (a router), or ``budget_finalize`` once the run must stop."""

    def route(state: Any, config: RunnableConfig) -> Any:
        run = run_of(config)
        if run is not None and run.stop is not None:
            return FINALIZE_NODE
        return path.invoke(state, config)

    async def aroute(state: Any, config: RunnableConfig) -> Any:
        run = run_of(config)
        if run is not None and run.stop is not None:
            return FINALIZE_NODE
        return await path.ainvoke(state, config)

    return RunnableCallable(route, aroute, name=name or getattr(path, "name", None), trace=False)
