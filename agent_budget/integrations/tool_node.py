"""Building blocks in the style of `langgraph.prebuilt`: compose them into your own graph
like `ToolNode` and `tools_condition`, or let `with_budget` wire them into an existing one.

- `budgeted_tool_node(tools)`: a `ToolNode` whose every call is reserved before its body
  runs, refused (a ToolMessage naming the limit) when it does not fit, charged once even
  when LangGraph runs the node again, and answered with the budget message appended;
- `budget_condition(path)`: the route into tool nodes (default path `tools_condition`): to
  `FINALIZE_NODE` once the run must stop, and each call of a multi-call step sent to the
  tool node as a task of its own (``Send``), so LangGraph keeps each finished call's
  result when a sibling is interrupted or fails;
- `finalize_node(model)` (in `agent_budget.integrations.nodes`), added as `FINALIZE_NODE`.

A hand-composed graph::

    graph.add_node("llm", call_model)
    graph.add_node("tools", budgeted_tool_node(tools))
    graph.add_node(FINALIZE_NODE, finalize_node(model))
    graph.add_conditional_edges("llm", budget_condition())
    graph.add_edge("tools", "llm")
    graph.add_edge(FINALIZE_NODE, END)
    agent = with_budget(graph, budget)  # gives each run its budget; wires nothing more

The stop decision after a tool step needs no route of its own: `with_budget` runs every
other node guarded, and the node after the tool step decides on entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, Send

from agent_budget.integrations._messages import tool_hooks
from agent_budget.integrations._private import (
    RunnableCallable,
    tool_node_settings,
    with_tool_wrappers,
)
from agent_budget.integrations._state import (
    SPEND_KEY,
    messages_of,
    node_name,
    run_of,
    snapshot,
    with_spend,
)
from agent_budget.integrations._tool_charges import GUARDED
from agent_budget.run import BudgetRun

BLOCK_MARK = "agent_budget_block"
"""Set on the finalize node and `budget_condition`: `with_budget` keeps them as wired."""
FINALIZE_NODE = "budget_finalize"
"""The name the finalize node must have: `budget_condition` and the guarded nodes send the
run there when it must stop."""


def budgeted_tool_node(tools: ToolNode | Sequence[BaseTool | Callable[..., Any]]) -> ToolNode:
    """A `ToolNode` (a copy of ``tools`` if it is one, with its settings) whose calls are
    paid for from the run's budget. Outside a budgeted run it is a plain ToolNode."""
    if isinstance(tools, ToolNode):
        node = tools
        handle_errors, key, inner_wrap, inner_awrap = tool_node_settings(node)
        tool_list: list[Any] = list(node.tools_by_name.values())
        name, tags = node.name or "tools", list(node.tags or [])
    else:
        handle_errors, key, inner_wrap, inner_awrap = None, "messages", None, None
        tool_list, name, tags = list(tools), "tools", []

    def persisted(run: BudgetRun, out: Any) -> Any:
        # The spend is written in the same step as the tool result that incurred it, so a
        # checkpoint never holds one without the other (resume, crash, interrupt).
        if isinstance(out, ToolMessage) and run.persist:
            return Command(update={key: [out], SPEND_KEY: snapshot(run)})
        return with_spend(run, out, -1)

    def wrap(request: Any, execute: Any) -> Any:
        run = run_of(request.runtime.config if request.runtime else None)
        if run is None:
            return inner_wrap(request, execute) if inner_wrap else execute(request)

        def call() -> Any:
            token = GUARDED.set(run)  # tool callbacks leave this call to the guard
            try:
                return inner_wrap(request, execute) if inner_wrap else execute(request)
            finally:
                GUARDED.reset(token)

        return persisted(run, run.guard_tool_call(request.tool_call, call, _hooks(run)))

    async def awrap(request: Any, execute: Any) -> Any:
        run = run_of(request.runtime.config if request.runtime else None)

        async def call() -> Any:
            token = GUARDED.set(run)
            try:
                if inner_awrap:
                    return await inner_awrap(request, execute)
                return await execute(request)
            finally:
                GUARDED.reset(token)

        if run is None:
            return await call()
        return persisted(run, await run.aguard_tool_call(request.tool_call, call, _hooks(run)))

    if getattr(tools, "agent_budget_tool_node", False):
        return tools  # type: ignore[return-value]  # already budgeted: guard each call once
    if isinstance(tools, ToolNode):
        # A copy of the user's node, of its own class (a subclass keeps its overrides). A
        # user's sync-only wrapper: ToolNode runs the sync one in async runs too.
        copied = with_tool_wrappers(tools, wrap, None if inner_wrap and not inner_awrap else awrap)
        copied.agent_budget_tool_node = True  # type: ignore[attr-defined]
        return copied
    kwargs: dict[str, Any] = {} if handle_errors is None else {"handle_tool_errors": handle_errors}
    budgeted = ToolNode(
        tool_list,
        name=name,
        tags=tags,
        messages_key=key,
        wrap_tool_call=wrap,
        # A user's sync-only wrapper: ToolNode runs the sync one in async runs too.
        awrap_tool_call=None if inner_wrap and not inner_awrap else awrap,
        **kwargs,
    )
    budgeted.agent_budget_tool_node = True  # type: ignore[attr-defined]
    return budgeted


def _hooks(run: BudgetRun) -> Any:
    return tool_hooks(run, annotate=True, node=node_name)


# --- routes -------------------------------------------------------------------------------


def budget_condition(
    path: Callable[..., Any] | Runnable[Any, Any] = tools_condition,
    *,
    tool_nodes: Iterable[str] = ("tools",),
    messages_key: str = "messages",
    ends: Mapping[Any, str] | None = None,
) -> Runnable[Any, Any]:
    """The route into budgeted tool nodes, for ``add_conditional_edges`` in place of
    ``path`` (default `tools_condition`)::

        graph.add_conditional_edges("llm", budget_condition())

    It goes to `FINALIZE_NODE` once the run must stop (the user's router is not asked:
    it may not cope with a state the refused node never wrote), and sends each call of a
    multi-call step to its tool node as a task of its own (``Send``), so LangGraph keeps
    each finished call's result when a sibling is interrupted or fails. ``tool_nodes``
    names the budgeted tool nodes ``path`` may route to; ``ends`` is the path map you
    would pass to ``add_conditional_edges`` (its values are node names)."""
    router = path if isinstance(path, Runnable) else RunnableCallable(path, trace=False)
    nodes = set(tool_nodes)

    def spread(state: Any, result: Any) -> Any:
        items = result if isinstance(result, list | tuple) else [result]
        out: list[Any] = []
        for item in items:
            dest = item if isinstance(item, Send) else (ends or {}).get(item, item)
            if isinstance(dest, Send) or dest not in nodes:
                out.append(item)  # not a tool step, or already one task per call (a Send)
                continue
            calls = _last_calls(state)
            if len(calls) <= 1:
                out.append(item)
            else:
                out.extend(_send_each(dest, calls, state))
        return out if isinstance(result, list | tuple) or len(out) != 1 else out[0]

    def _last_calls(state: Any) -> list[Any]:
        msgs = messages_of(state, messages_key)
        last = msgs[-1] if msgs else None
        return list(last.tool_calls) if isinstance(last, AIMessage) else []

    def route(state: Any, config: RunnableConfig) -> Any:
        if _stopping(config):
            return FINALIZE_NODE
        return spread(state, router.invoke(state, config))

    async def aroute(state: Any, config: RunnableConfig) -> Any:
        if _stopping(config):
            return FINALIZE_NODE
        return spread(state, await router.ainvoke(state, config))

    name = getattr(router, "name", None) or "budget_condition"
    condition = RunnableCallable(route, aroute, name=name, trace=False)
    setattr(condition, BLOCK_MARK, True)
    return condition


def _stopping(config: RunnableConfig) -> bool:
    """The run must stop (a node was refused)."""
    run = run_of(config)
    return run is not None and run.stop is not None


def _send_each(tool_node: str, calls: list[Any], state: Any) -> list[Send]:
    return [
        Send(tool_node, {"__type": "tool_call_with_context", "tool_call": call, "state": state})
        for call in calls
    ]
