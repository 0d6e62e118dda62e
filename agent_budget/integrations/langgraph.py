"""`with_budget(graph, budget)`: any LangGraph agent, budgeted.

It wires the building blocks of `agent_budget.integrations.tool_node` into the user's
graph, rebuilt through `StateGraph`'s public methods:

- each `ToolNode` becomes a `budgeted_tool_node` (the budget message rides on each tool
  result: a message of its own would cost an ``add_messages`` write per step);
- routes into a tool node go through `budget_condition`: a multi-call step runs one task
  per call on the node's fan-out twin and meets in ``budget_tracker``;
- the tool node's way out goes through `after_tools`: on, or to ``budget_finalize``;
- every other node runs as the run's own and ends the budget's way when a model call in
  it is refused.

Model calls are charged by a callback handler added to each run's config, so any chat model
called inside any node is on the budget, whatever the node's code looks like.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeGuard, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config, merge_configs
from langgraph.constants import END, START
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.types import Command

from agent_budget.budget import Budget
from agent_budget.errors import GraphNotSupported, InvalidBudget
from agent_budget.integrations._discover import check_tool_names, find_chat_model
from agent_budget.integrations._finalize import AnswerPlan
from agent_budget.integrations._graph_stop import stop_first
from agent_budget.integrations._private import CONFIG_KEY_CHECKPOINTER, add_state_key
from agent_budget.integrations._state import (
    RUN_KEY,
    SPEND_KEY,
    BudgetChannel,
    current_run,
    run_of,
)
from agent_budget.integrations._tool_charges import ToolChargeHandler
from agent_budget.integrations._tool_nodes import replace_tool_node, tool_node_in
from agent_budget.integrations.callbacks import BudgetCallbackHandler, TokenCounter, with_handler
from agent_budget.integrations.nodes import finalize_node, guarded_node
from agent_budget.integrations.threads import (
    akeep_if_lagging,
    akeep_spend_after_error,
    keeps_spend,
    kept,
)
from agent_budget.integrations.tool_node import (
    EACH_SUFFIX,
    FINALIZE_NODE,
    JOIN_NODE,
    Continuation,
    after_tools,
    budget_condition,
    budgeted_tool_node,
    join_node,
    static_continuation,
)
from agent_budget.run import OWNER, Retry, WarningCallback
from agent_budget.snapshot import BudgetSnapshot, latest
from agent_budget.tracker import BudgetTracker, Spend

__all__ = [
    "SPEND_KEY",
    "BudgetChannel",
    "BudgetedGraph",
    "current_regime",
    "current_run",
    "current_tracker",
    "thread_snapshot",
    "with_budget",
]


@dataclass(frozen=True)
class _Setup:
    budget: Budget | None
    final_model: BaseChatModel | None
    retry: Retry | None
    token_counter: TokenCounter | None
    messages_key: str
    on_warning: WarningCallback | None = None


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
    for name in (JOIN_NODE, FINALIZE_NODE):
        if name in builder.nodes:
            raise GraphNotSupported(
                f"the graph already has a node named {name!r}: is it already budgeted? "
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
    if final_model is None and base is not None and base.on_exhausted == "finalize":
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
    setup = _Setup(base, final_model, tool_retry, token_counter, messages_key, on_warning)
    new = _rewired(builder, tool_nodes, setup)
    compiled = new.compile(**compile_kwargs)
    # Re-class the compiled graph the way Pregel.copy() does, with our run setup added.
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    return BudgetedGraph(_budget_setup=setup, **attrs)


def _rewired(
    builder: StateGraph[Any, Any, Any, Any], tool_nodes: set[str], setup: _Setup
) -> StateGraph[Any, Any, Any, Any]:
    """The user's graph, rebuilt with the budget's building blocks wired in."""
    key, model = setup.messages_key, setup.final_model
    new: StateGraph[Any, Any, Any, Any] = StateGraph(
        builder.state_schema,
        builder.context_schema,
        input_schema=builder.input_schema,
        output_schema=builder.output_schema,
    )
    add_state_key(new, BudgetChannel)
    # Only a bare ToolNode gets the fan-out twin: a ToolNode in `.with_fallbacks` or a
    # sequence runs its whole step in one task, as written (a fallback reads the state).
    fan_out = {n for n in tool_nodes if isinstance(builder.nodes[n].runnable, ToolNode)}
    # The nodes that write the graph's answer (`AnswerPath`: an edge to END) write the
    # final answer themselves when their call is refused, and still run when another is.
    plan = AnswerPlan.of(builder, key, {SPEND_KEY}, tool_nodes)
    answer_nodes = plan.path.nodes if plan.path else frozenset()
    for name, spec in builder.nodes.items():
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
            runnable = guarded_node(runnable, key, model, answers=name in answer_nodes)
        _add_node_like(new, name, spec, runnable)
        if name in fan_out:  # the fan-out twin: the same node, one call per task
            _add_node_like(new, name + EACH_SUFFIX, spec, runnable)

    continuations: dict[str, Continuation] = {}
    for tool in tool_nodes:
        targets = sorted(end for start, end in builder.edges if start == tool)
        branches = builder.branches.get(tool, {})
        join = JOIN_NODE if len(tool_nodes) == 1 else f"{JOIN_NODE}_{tool}"
        if tool in fan_out:
            new.add_node(join, join_node())
            new.add_edge(tool + EACH_SUFFIX, join)
        if branches:  # the tool node had a conditional way out: keep it, behind ours
            (branch,) = branches.values()  # a tool node has one way out in practice
            path, ends = branch.path, branch.ends

            go_on = _branch_continuation(path)
            path_map = None if ends is None else {**ends, FINALIZE_NODE: FINALIZE_NODE}
            reads_state = True
        else:
            go_on = static_continuation(targets)
            path_map = {t: t for t in [*(targets or [END]), FINALIZE_NODE]}
            reads_state = False
        continuations[tool] = go_on
        for source in (tool, join) if tool in fan_out else (tool,):
            new.add_conditional_edges(
                source, after_tools(tool, go_on, reads_state=reads_state), path_map
            )
    for start, end in builder.edges:
        if start not in tool_nodes:
            new.add_edge(start, end)
    for starts, end in builder.waiting_edges:
        new.add_edge(list(starts), end)
    for source, branches in builder.branches.items():
        if source in tool_nodes:
            continue
        for branch in branches.values():
            ends = branch.ends
            leads_to_tools = ends is None or any(v in fan_out for v in ends.values())
            path = (  # either way, to budget_finalize once the run must stop
                budget_condition(branch.path, ends, fan_out, key)
                if leads_to_tools and fan_out
                else stop_first(branch.path)
            )
            routes: dict[Any, str] | None = None
            if ends is not None:
                routes = dict(ends)
                routes.update({t + EACH_SUFFIX: t + EACH_SUFFIX for t in fan_out})
                routes[FINALIZE_NODE] = FINALIZE_NODE
            new.add_conditional_edges(source, path, routes)
    new.add_node(FINALIZE_NODE, finalize_node(key, model, continuations, plan))
    new.add_edge(FINALIZE_NODE, END)
    return new


def _branch_continuation(path: Any) -> Continuation:
    def go_on(state: Any, config: RunnableConfig) -> Any:
        return path.invoke(state, config)

    return go_on


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


class BudgetedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph whose every run gets a budget. Use it like any compiled graph."""

    _budget_setup: _Setup

    def __init__(self, *, _budget_setup: _Setup, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # called by Pregel.copy() / with_config()
        self._budget_setup = _budget_setup

    @property
    def budget(self) -> Budget | None:
        return self._budget_setup.budget

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        # `invoke` runs through here too. A run with a thread to keep its spend on gets a
        # wrapper (`kept`) that records the spend if it raises; any other gets LangGraph's
        # own iterator, with no frame of ours per chunk.
        config = self._with_run(input, config, saved=self._saved_spend(config))
        chunks = super().stream(input, config, **kwargs)
        if keeps_spend(self.checkpointer, config):
            return kept(chunks, self.checkpointer, config, _resuming(input))
        return chunks

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        config = self._with_run(input, config, saved=await self._asaved_spend(config))
        try:
            async for chunk in super().astream(input, config, **kwargs):
                yield chunk
        except Exception:
            await akeep_spend_after_error(self.checkpointer, config)
            raise
        await akeep_if_lagging(self.checkpointer, config, _resuming(input))

    def get_spend(self, config: RunnableConfig) -> Spend | None:
        """The spend a checkpointed thread has recorded (None if it has none)."""
        saved = self._saved_spend(config)
        return Spend.from_dict(dict(saved["spent"])) if saved else None

    def _with_run(
        self, input: Any, config: RunnableConfig | None, saved: BudgetSnapshot | None
    ) -> RunnableConfig:
        from agent_budget.integrations._setup import start_run

        # A graph's own config (`with_config`) counts, as it does for the run itself.
        conf = ensure_config(merge_configs(self.config, config) if self.config else config)
        configurable = dict(conf.get("configurable") or {})
        setup = self._budget_setup
        if isinstance(input, dict) and input.get(SPEND_KEY):
            saved = input[SPEND_KEY]
        resuming = _resuming(input)
        parent = run_of(conf) or OWNER.get()
        run, callbacks = start_run(
            setup.budget,
            conf,
            saved=saved,
            resuming=resuming,
            parent=parent,
            name=self.name,
            retry=setup.retry,
            on_warning=setup.on_warning,
        )
        if run.tracker.budget.on_exhausted == "finalize" and setup.final_model is None:
            raise InvalidBudget(
                "on_exhausted='finalize' needs a final model: pass with_budget(..., final_model=)"
            )
        # Without a checkpointer nothing of the state outlives the run: the spend then
        # lives in the tracker alone, and no step pays for writing it to state.
        run.persist = self.checkpointer not in (None, True, False) or (
            self.checkpointer is not False and CONFIG_KEY_CHECKPOINTER in configurable
        )
        if parent is not None and setup.budget is None:
            # A child spending its parent's own limits: when it has to stop, so does the
            # parent (a supervisor would only hand the same spent budget to the next worker).
            run.parent = parent
        configurable[RUN_KEY] = run
        handler = BudgetCallbackHandler(run, token_counter=setup.token_counter)
        callbacks = with_handler(with_handler(callbacks, handler), ToolChargeHandler(run))
        return RunnableConfig(**{**conf, "configurable": configurable, "callbacks": callbacks})

    def _saved_spend(self, config: RunnableConfig | None) -> BudgetSnapshot | None:
        cp, thread = self.checkpointer, _thread_id(config)
        if cp is None or cp is True or cp is False or thread is None:
            return None
        return _newest_spend(cp.get_tuple(_checkpoint_config(config)))

    async def _asaved_spend(self, config: RunnableConfig | None) -> BudgetSnapshot | None:
        cp, thread = self.checkpointer, _thread_id(config)
        if cp is None or cp is True or cp is False or thread is None:
            return None
        try:
            saved = await cp.aget_tuple(_checkpoint_config(config))
        except NotImplementedError:
            saved = cp.get_tuple(_checkpoint_config(config))
        return _newest_spend(saved)


def thread_snapshot(checkpointer: Any, thread_id: str) -> BudgetSnapshot | None:
    """The budget snapshot a checkpointed thread holds (spend, top-ups, sub-budget tree,
    events), read straight from any LangGraph checkpointer; None if it has none."""
    saved = checkpointer.get_tuple(RunnableConfig(configurable={"thread_id": thread_id}))
    return _newest_spend(saved)


def _newest_spend(saved: Any) -> BudgetSnapshot | None:
    """The thread's spend: the checkpoint's, or newer from writes of an interrupted step
    (tasks that finished before the interrupt keep their writes and are not run again)."""
    if saved is None:
        return None
    best: BudgetSnapshot | None = saved.checkpoint["channel_values"].get(SPEND_KEY)
    for _task, channel, value in saved.pending_writes or ():
        if channel == SPEND_KEY and isinstance(value, dict):
            best = latest(best, value)  # type: ignore[arg-type]
    return best


def _resuming(input: Any) -> bool:
    return input is None or isinstance(input, Command)


def _thread_id(config: RunnableConfig | None) -> Any:
    return ((config or {}).get("configurable") or {}).get("thread_id")


def _checkpoint_config(config: RunnableConfig | None) -> RunnableConfig:
    configurable = (config or {}).get("configurable") or {}
    keep: dict[str, Any] = {
        k: configurable[k]
        for k in ("thread_id", "checkpoint_ns", "checkpoint_id")
        if k in configurable
    }
    return RunnableConfig(configurable=keep)


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
