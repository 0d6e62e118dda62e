"""`with_budget(graph, budget)`: any LangGraph agent, budgeted.

It wires the building blocks of `agent_budget.integrations.tool_node` into the user's
graph, rebuilt through `StateGraph`'s public methods, keeping the graph's own nodes and
edges:

- each `ToolNode` becomes a `budgeted_tool_node` (the budget message rides on each tool
  result: a message of its own would cost an ``add_messages`` write per step);
- routes into a tool node go through `budget_condition`: a multi-call step runs one task
  per call on the tool node itself;
- every other node runs as the run's own (`guarded_node`): on entry it decides whether
  the run must stop (so a tool node needs no route of its own and a fanned-out step no
  join), and a model call in it that is refused ends the run the budget's way;
- `budget_finalize` is added once. A graph already composed from the blocks by hand keeps
  them as written.

Model calls are charged by a callback handler added to each run's config, so any chat model
called inside any node is on the budget, whatever the node's code looks like.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, TypeGuard, cast

from langchain_core.language_models import BaseChatModel
from langgraph.constants import END, START
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel

from agent_budget.budget import Budget
from agent_budget.errors import GraphNotSupported
from agent_budget.integrations._budgeted_graph import (
    BudgetedGraph,
    _Setup,
    thread_snapshot,
)
from agent_budget.integrations._discover import check_tool_names, find_chat_model
from agent_budget.integrations._finalize import AnswerPlan
from agent_budget.integrations._graph_stop import stop_first
from agent_budget.integrations._private import add_state_key
from agent_budget.integrations._state import (
    SPEND_KEY,
    BudgetChannel,
    current_run,
)
from agent_budget.integrations._tool_nodes import replace_tool_node, tool_node_in
from agent_budget.integrations.callbacks import TokenCounter
from agent_budget.integrations.nodes import finalize_node, guarded_node

# Kept importable from here, where they once lived: they read a checkpoint's spend.
from agent_budget.integrations.tool_node import (
    BLOCK_MARK,
    FINALIZE_NODE,
    budget_condition,
    budgeted_tool_node,
)
from agent_budget.run import Retry, WarningCallback
from agent_budget.tracker import BudgetTracker

__all__ = [
    "FINALIZE_NODE",
    "SPEND_KEY",
    "BudgetChannel",
    "BudgetedGraph",
    "budget_condition",
    "budgeted_tool_node",
    "current_regime",
    "current_run",
    "current_tracker",
    "finalize_node",
    "thread_snapshot",
    "with_budget",
]


def with_budget(
    graph: StateGraph[Any, Any, Any, Any] | CompiledStateGraph[Any, Any, Any, Any],
    budget: Budget | dict[str, Any] | str | None = None,
    *,
    final_model: BaseChatModel | None = None,
    tool_retry: Retry | None = None,
    token_counter: TokenCounter | None = None,
    messages_key: str = "messages",
    on_warning: WarningCallback | None = None,
) -> BudgetedGraph:
    """Wrap a LangGraph agent (a `StateGraph` or a compiled graph) with a budget.

    ``budget`` may be a `Budget`, a dict, or a YAML/TOML/JSON path; ``None`` takes it from
    each run's ``config["configurable"]["budget"]`` or else the ``AGENT_BUDGET_*``
    environment. ``final_model`` answers when the budget runs out (default: the chat model
    found in the graph's nodes). ``tool_retry`` retries failed tool calls, each attempt
    charged. ``on_warning(threshold, text)`` is called once per ``warn_at`` threshold
    crossed (also sent to ``stream_mode="custom"``). The result is compiled with the
    original checkpointer, store, cache, interrupts, debug flag and name.
    """
    base = Budget.load(budget) if budget is not None else None
    if isinstance(graph, CompiledStateGraph):
        builder = graph.builder
        compile_kwargs: dict[str, Any] = {
            "checkpointer": graph.checkpointer,
            "store": graph.store,
            "cache": graph.cache,
            "interrupt_before": graph.interrupt_before_nodes,
            "interrupt_after": graph.interrupt_after_nodes,
            "debug": graph.debug,
            "name": graph.name,
        }
    elif isinstance(graph, StateGraph):
        builder, compile_kwargs = graph, {}
    else:
        raise GraphNotSupported(
            f"with_budget() needs a langgraph StateGraph or a compiled graph, got "
            f"{type(graph).__name__}; for langchain.agents.create_agent use "
            "agent_budget.integrations.langchain.BudgetMiddleware"
        )
    finalize = builder.nodes.get(FINALIZE_NODE)
    # A graph composed by hand from the building blocks has our finalize node: it gets
    # each run's budget, and its nodes and routes stay as written.
    composed = finalize is not None and getattr(finalize.runnable, BLOCK_MARK, False)
    if isinstance(graph, BudgetedGraph) or (finalize is not None and not composed):
        raise GraphNotSupported(
            f"the graph already has a node named {FINALIZE_NODE!r}: is it already budgeted? "
            "Wrap the original graph once."
        )
    specs = builder.nodes
    # A ToolNode as users add it: bare, subclassed, in `.with_fallbacks`, in a sequence.
    found = {n: tool_node_in(s.runnable) for n, s in specs.items()}
    tool_nodes = {n for n, node in found.items() if node is not None}
    if base is not None:
        names = {t for n in tool_nodes for t in cast(ToolNode, found[n]).tools_by_name}
        check_tool_names(base, names)
    if final_model is None:
        final_model = find_chat_model([s.runnable for s in specs.values()])
    if (
        final_model is None
        and not composed
        and base is not None
        and base.on_exhausted == "finalize"
    ):
        raise GraphNotSupported(
            "with_budget(on_exhausted='finalize') answers with one last model call, but no "
            "chat model was found in the graph's nodes; pass final_model=<your chat model>"
        )
    other_tool_users = any(
        isinstance(s.runnable, Pregel) or getattr(s.runnable, "agent_budget_planner", False)
        for s in specs.values()
    )
    if not tool_nodes and not other_tool_users:
        warnings.warn(
            "with_budget(): the graph has no ToolNode, so only model calls are budgeted",
            stacklevel=2,
        )
    setup = _Setup(base, final_model, tool_retry, token_counter, messages_key, on_warning, composed)
    new = _rewired(builder, tool_nodes, setup)
    compiled = new.compile(**compile_kwargs)
    # Re-class the compiled graph the way Pregel.copy() does, with our run setup added.
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    return BudgetedGraph(_budget_setup=setup, **attrs)


def _rewired(
    builder: StateGraph[Any, Any, Any, Any], tool_nodes: set[str], setup: _Setup
) -> StateGraph[Any, Any, Any, Any]:
    """The user's graph, rebuilt with the budget's building blocks wired in. The graph's
    own edges are kept: the stop decision is made on entry to the node after a tool step
    (`guarded_node`), so a tool node needs no route of its own, and a multi-call step
    needs no join."""
    key, model = setup.messages_key, setup.final_model
    new: StateGraph[Any, Any, Any, Any] = StateGraph(
        builder.state_schema,
        builder.context_schema,
        input_schema=builder.input_schema,
        output_schema=builder.output_schema,
    )
    add_state_key(new, BudgetChannel)
    # Only a bare ToolNode gets one task per call: a ToolNode in `.with_fallbacks` or a
    # sequence runs its whole step in one task, as written (a fallback reads the state).
    fan_out = {n for n in tool_nodes if isinstance(builder.nodes[n].runnable, ToolNode)}
    # The nodes that write the graph's answer (`AnswerPath`: an edge to END) write the
    # final answer themselves when their call is refused, and still run when another is.
    plan = AnswerPlan.of(builder, key, {SPEND_KEY}, tool_nodes)
    answer_nodes = plan.path.nodes if plan.path else frozenset()
    for name, spec in builder.nodes.items():
        if getattr(spec.runnable, BLOCK_MARK, False):  # a block the user wired: as is
            _add_node_like(new, name, spec, spec.runnable)
            continue
        if name in tool_nodes:
            node = cast(ToolNode, tool_node_in(spec.runnable))
            runnable: Any = replace_tool_node(spec.runnable, budgeted_tool_node(node))
        else:
            runnable = spec.runnable
            if _unbudgeted_tool_user(runnable):
                # A plain subgraph that runs tools: budget it as a child with no limits of
                # its own, so its tool calls are guarded and counted against this budget.
                # It answers with its own model (a worker's final answer is the worker's,
                # not the supervisor's).
                runnable = with_budget(
                    runnable,
                    final_model=find_chat_model([runnable]) or model,
                    tool_retry=setup.retry,
                    token_counter=setup.token_counter,
                    messages_key=key,
                )
                runnable.name = name  # its spend shows under the node's name
            runnable = guarded_node(runnable, key, model, answers=name in answer_nodes, name=name)
        _add_node_like(new, name, spec, runnable)

    for start, end in builder.edges:
        new.add_edge(start, end)
    for starts, end in builder.waiting_edges:
        new.add_edge(list(starts), end)
    for source, branches in builder.branches.items():
        for branch in branches.values():
            if source in tool_nodes or getattr(branch.path, BLOCK_MARK, False):
                # The way out of a tool step (the next node decides), or a route of ours.
                new.add_conditional_edges(source, branch.path, branch.ends)
                continue
            ends = branch.ends
            leads_to_tools = ends is None or any(v in fan_out for v in ends.values())
            path = (  # either way, to budget_finalize once the run must stop
                budget_condition(branch.path, tool_nodes=fan_out, messages_key=key, ends=ends)
                if leads_to_tools and fan_out
                else stop_first(branch.path)
            )
            routes = None if ends is None else {**ends, FINALIZE_NODE: FINALIZE_NODE}
            new.add_conditional_edges(source, path, routes)
    if FINALIZE_NODE not in new.nodes:
        new.add_node(FINALIZE_NODE, finalize_node(model, messages_key=key, plan=plan))
        new.add_edge(FINALIZE_NODE, END)
    return new


def _add_node_like(
    new: StateGraph[Any, Any, Any, Any], name: str, spec: Any, runnable: Any
) -> None:
    """Add a node through the public `add_node` (which registers its input schema), then
    keep every other setting of the original node (retry, cache, defer, timeouts, error
    handlers) by copying its spec."""
    if name == START:
        return
    new.add_node(name, runnable, input_schema=spec.input_schema)
    new.nodes[name] = replace(spec, runnable=runnable)


def _unbudgeted_tool_user(
    runnable: Any,
) -> TypeGuard[CompiledStateGraph[Any, Any, Any, Any]]:
    return (
        isinstance(runnable, CompiledStateGraph)
        and not isinstance(runnable, BudgetedGraph)
        and any(isinstance(s.runnable, ToolNode) for s in runnable.builder.nodes.values())
    )


def current_regime() -> str | None:
    """The current run's budget regime (``"HIGH"`` ... ``"CRITICAL"``), e.g. for
    ``BudgetRouter(regime=current_regime)``; None outside a budgeted run."""
    run = current_run()
    return None if run is None else run.tracker.regime().value


def current_tracker() -> BudgetTracker | None:
    """The live `BudgetTracker` of the current budgeted run, if any."""
    run = current_run()
    return None if run is None else run.tracker
