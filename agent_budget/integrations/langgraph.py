"""`with_budget(graph, budget)`: any LangGraph agent, budgeted.

The wrapped graph is the user's graph rebuilt with:

- each `ToolNode` rebuilt with a ``wrap_tool_call`` guard: a call is reserved before its
  body runs and refused (a ToolMessage saying which budget is spent) when it does not fit;
- a ``budget_tracker`` node after each tool node: it stores the spend in graph state (so
  checkpointers persist it) and decides whether the run must stop. The budget message
  itself is appended to each tool result by the guard, as the result is written: a message
  of its own would cost an extra ``add_messages`` write per step, which grows with history;
- every other node wrapped so a model call the budget refuses ends the run the budget's
  way (``finalize`` / ``raise`` / ``interrupt``) instead of crashing it;
- a ``budget_finalize`` node: one last model call, without tools, for the answer.

Model calls are charged by a callback handler added to each run's config, so any chat model
called inside any node is on the budget, whatever the node's code looks like.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypedDict, TypeGuard

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER
from langgraph.config import get_config
from langgraph.constants import END
from langgraph.graph import StateGraph
from langgraph.graph._branch import BranchSpec
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.types import Command, interrupt

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded, GraphNotSupported, InvalidBudget
from agent_budget.integrations._discover import check_tool_names, find_chat_model
from agent_budget.integrations._finalize import AnswerPlan, afinal_update, final_update
from agent_budget.integrations._run import ACTIVE_RUN, BudgetRun, Retry, WarningCallback
from agent_budget.integrations._tool_charges import ToolChargeHandler
from agent_budget.integrations._tool_nodes import (
    replace_tool_node,
    tool_node_in,
    with_tool_wrappers,
)
from agent_budget.integrations.callbacks import (
    BudgetCallbackHandler,
    TokenCounter,
)
from agent_budget.tracker import BudgetTracker, Spend

SPEND_KEY = "agent_budget"
"""Graph-state key holding the spend snapshot (persisted by the checkpointer)."""
RUN_KEY = "__agent_budget_run"
TRACKER_NODE = "budget_tracker"
FINALIZE_NODE = "budget_finalize"


def _latest(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep the newest snapshot, by (epoch, commits): parallel nodes of one step, and
    writes of an interrupted step replayed on resume, may land in any order."""
    if new is None:
        return old
    if old is None:
        return new
    return new if _order(new) >= _order(old) else old


def _order(snapshot: dict[str, Any]) -> tuple[int, int]:
    return int(snapshot.get("epoch", 0)), int(snapshot.get("seq", 0))


class BudgetChannel(TypedDict, total=False):
    agent_budget: Annotated[dict[str, Any] | None, _latest]


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
    new = _copy_builder(builder)
    tool_nodes = {
        n: node for n, s in new.nodes.items() if (node := tool_node_in(s.runnable)) is not None
    }
    if base is not None:
        check_tool_names(base, {t for node in tool_nodes.values() for t in node.tools_by_name})
    if final_model is None:
        final_model = find_chat_model([s.runnable for s in new.nodes.values()])
    if final_model is None and base is not None and base.on_exhausted == "finalize":
        raise GraphNotSupported(
            "with_budget(on_exhausted='finalize') answers with one last model call, but no "
            "chat model was found in the graph's nodes; pass final_model=<your chat model>"
        )
    other_tool_users = any(
        isinstance(s.runnable, Pregel) or getattr(s.runnable, "agent_budget_planner", False)
        for s in new.nodes.values()
    )
    if not tool_nodes and not other_tool_users:
        warnings.warn(
            "with_budget(): the graph has no ToolNode, so only model calls are budgeted",
            stacklevel=2,
        )
    setup = _Setup(base, final_model, tool_retry, token_counter, messages_key, on_warning)

    plan = AnswerPlan.of(new, messages_key, {SPEND_KEY})
    new._add_schema(BudgetChannel)
    for name, spec in list(new.nodes.items()):
        runnable = spec.runnable
        if name in tool_nodes:
            runnable = replace_tool_node(runnable, _guarded_tool_node(tool_nodes[name]))
        else:
            if _unbudgeted_tool_user(runnable):
                # A plain subgraph that runs tools: budget it as a child with no limits of
                # its own, so its tool calls are guarded and counted against this budget.
                # Its final answer comes from its own model (a worker answers with the
                # worker's model, not the supervisor's).
                runnable = with_budget(
                    runnable,
                    final_model=find_chat_model([runnable]) or final_model,
                    tool_retry=tool_retry,
                    token_counter=token_counter,
                    messages_key=messages_key,
                )
                runnable.name = name  # its spend shows under the node's name
            # Subgraphs too: the node then writes this graph's spend after it ran.
            runnable = _model_node(runnable, messages_key)
        new.nodes[name] = replace(spec, runnable=runnable)
    stop_at_branches(new, set(tool_nodes))
    for tool_node in tool_nodes:
        tracker = TRACKER_NODE if len(tool_nodes) == 1 else f"{TRACKER_NODE}_{tool_node}"
        _insert_tracker(new, tool_node, tracker, messages_key)
    new.add_node(FINALIZE_NODE, _finalize_node(plan), input_schema=new.state_schema)
    new.add_edge(FINALIZE_NODE, END)

    compiled = new.compile(**compile_kwargs)
    # Re-class the compiled graph the way Pregel.copy() does, with our run setup added.
    attrs = {k: v for k, v in compiled.__dict__.items() if k != "__orig_class__"}
    return BudgetedGraph(_budget_setup=setup, **attrs)


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
        config = self._with_run(input, config, saved=self._saved_spend(config))
        try:
            yield from super().stream(input, config, **kwargs)
        except Exception:
            keep_spend_after_error(self.checkpointer, config)
            raise

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

    def get_spend(self, config: RunnableConfig) -> Spend | None:
        """The spend a checkpointed thread has recorded (None if it has none)."""
        saved = self._saved_spend(config)
        return Spend.from_dict(saved["spent"]) if saved else None

    def _with_run(
        self, input: Any, config: RunnableConfig | None, saved: dict[str, Any] | None
    ) -> RunnableConfig:
        conf = ensure_config(config)
        configurable = dict(conf.get("configurable") or {})
        setup = self._budget_setup
        tracker = configurable.get("budget_tracker")
        parent = _run_of(conf) or ACTIVE_RUN.get()
        callbacks = conf.get("callbacks")
        if parent is not None:
            # A budgeted graph inside a budgeted run (a subgraph node, a Send target, a
            # sub-agent called by a tool) spends from the parent's budget as a child; with
            # no budget of its own, as a child with the parent's prices and no own limits.
            name = (setup.budget and setup.budget.name) or self.name or "subgraph"
            budget = setup.budget or parent.tracker.budget.child(name)
            tracker = parent.tracker.child(name, budget, reuse=True)
            callbacks = _without_budget_handlers(callbacks)  # the child charges the parent
        elif not isinstance(tracker, BudgetTracker):
            budget = Budget.from_config(conf) or setup.budget or Budget.from_env()
            resuming = input is None or isinstance(input, Command)
            if isinstance(input, dict) and input.get(SPEND_KEY):
                saved = input[SPEND_KEY]
            fresh = budget.scope == "run" and not resuming
            tracker = BudgetTracker.restore(budget, saved, fresh=fresh)
        if parent is None:
            from agent_budget.ledger import attach_ledger  # light: no driver unless configured

            attach_ledger(tracker, conf)
        if tracker.budget.on_exhausted == "finalize" and setup.final_model is None:
            raise InvalidBudget(
                "on_exhausted='finalize' needs a final model: pass with_budget(..., final_model=)"
            )
        run = BudgetRun(
            tracker,
            final_model=setup.final_model,
            retry=setup.retry,
            annotate_results=True,
            on_warning=setup.on_warning,
        )
        if parent is not None and setup.budget is None:
            # A child spending the parent's own limits: when it has to stop, so does the
            # parent (a supervisor would only hand the same spent budget to the next worker).
            run.parent = parent
        # Without a checkpointer nothing of the state outlives the run: the spend then
        # lives in the tracker alone, and no step pays for writing it to state.
        run.persist = self.checkpointer not in (None, True, False) or (
            self.checkpointer is not False and CONFIG_KEY_CHECKPOINTER in configurable
        )
        configurable[RUN_KEY] = run
        handler = BudgetCallbackHandler(tracker, token_counter=setup.token_counter)
        callbacks = _with_handler(callbacks, handler)
        callbacks = _with_handler(callbacks, ToolChargeHandler(run))
        return RunnableConfig(**{**conf, "configurable": configurable, "callbacks": callbacks})

    def _saved_spend(self, config: RunnableConfig | None) -> dict[str, Any] | None:
        cp, thread = self.checkpointer, _thread_id(config)
        if cp is None or cp is True or cp is False or thread is None:
            return None
        return _newest_spend(cp.get_tuple(_checkpoint_config(config)))

    async def _asaved_spend(self, config: RunnableConfig | None) -> dict[str, Any] | None:
        cp, thread = self.checkpointer, _thread_id(config)
        if cp is None or cp is True or cp is False or thread is None:
            return None
        try:
            saved = await cp.aget_tuple(_checkpoint_config(config))
        except NotImplementedError:
            saved = cp.get_tuple(_checkpoint_config(config))
        return _newest_spend(saved)


def keep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    """Record the run's spend on its thread when the run raised (`BudgetExceeded` from a
    node or a subgraph, any crash): the writes of a node that raises are lost, and with
    them the spend it carried, so a resume would pay for the same calls again. It goes in
    as a pending write of the thread's latest checkpoint, under a task id LangGraph runs no
    task for; `_newest_spend` reads it back on resume."""
    run = _keeps_spend(checkpointer, config)
    saved = checkpointer.get_tuple(_checkpoint_config(config)) if run else None
    if run is not None and saved is not None:
        checkpointer.put_writes(saved.config, [(SPEND_KEY, _snapshot(run))], SPEND_TASK_ID)


async def akeep_spend_after_error(checkpointer: Any, config: RunnableConfig) -> None:
    run = _keeps_spend(checkpointer, config)
    if run is None:
        return
    try:
        saved = await checkpointer.aget_tuple(_checkpoint_config(config))
        if saved is not None:
            await checkpointer.aput_writes(
                saved.config, [(SPEND_KEY, _snapshot(run))], SPEND_TASK_ID
            )
    except NotImplementedError:  # a sync-only checkpointer
        keep_spend_after_error(checkpointer, config)


def _keeps_spend(checkpointer: Any, config: RunnableConfig) -> BudgetRun | None:
    run = _run_of(config)
    if run is None or checkpointer in (None, True, False) or not run.persist:
        return None
    configurable = ensure_config(config).get("configurable") or {}
    if _thread_id(config) is None or configurable.get("checkpoint_ns"):
        return None  # a subgraph's run: its parent keeps the thread's spend
    return run


SPEND_TASK_ID = "agent_budget:spend-after-error"


def thread_snapshot(checkpointer: Any, thread_id: str) -> dict[str, Any] | None:
    """The budget snapshot a checkpointed thread holds (spend, top-ups, sub-budget tree,
    events), read straight from any LangGraph checkpointer; None if it has none."""
    saved = checkpointer.get_tuple(RunnableConfig(configurable={"thread_id": thread_id}))
    return _newest_spend(saved)


def _newest_spend(saved: Any) -> dict[str, Any] | None:
    """The thread's spend: the checkpoint's, or newer from writes of an interrupted step
    (tasks that finished before the interrupt keep their writes and are not run again)."""
    if saved is None:
        return None
    best = saved.checkpoint["channel_values"].get(SPEND_KEY)
    for _task, channel, value in saved.pending_writes or ():
        if channel == SPEND_KEY and isinstance(value, dict):
            best = _latest(best, value)
    return best


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


def _run_of(config: RunnableConfig) -> BudgetRun | None:
    return ((config or {}).get("configurable") or {}).get(RUN_KEY)


def _snapshot(run: BudgetRun) -> dict[str, Any]:
    return {**run.tracker.snapshot(), "run": run.run_id}


# --- graph surgery ------------------------------------------------------------------------


def _unbudgeted_tool_user(
    runnable: Any,
) -> TypeGuard[CompiledStateGraph[Any, Any, Any, Any]]:
    return (
        isinstance(runnable, CompiledStateGraph)
        and not isinstance(runnable, BudgetedGraph)
        and any(isinstance(s.runnable, ToolNode) for s in runnable.builder.nodes.values())
    )


def _copy_builder(builder: StateGraph[Any, Any, Any, Any]) -> StateGraph[Any, Any, Any, Any]:
    new = copy.copy(builder)
    new.nodes = dict(builder.nodes)
    new.edges = set(builder.edges)
    new.branches = defaultdict(dict, {k: dict(v) for k, v in builder.branches.items()})
    new.waiting_edges = set(builder.waiting_edges)
    new.channels = dict(builder.channels)
    new.managed = dict(builder.managed)
    new.schemas = dict(builder.schemas)
    new.compiled = False
    for name in (TRACKER_NODE, FINALIZE_NODE):
        if name in new.nodes:
            raise GraphNotSupported(
                f"the graph already has a node named {name!r}: is it already budgeted? "
                "Wrap the original graph once."
            )
    return new


def _insert_tracker(
    new: StateGraph[Any, Any, Any, Any], tool_node: str, name: str, key: str
) -> None:
    """tool_node -> name -> (tool_node's old successors | budget_finalize)."""
    new.add_node(name, _tracker_node(key), input_schema=new.state_schema)
    for start, end in list(new.edges):
        if start == tool_node:
            new.edges.discard((start, end))
            new.branches[name][f"{name}:{end}"] = BranchSpec(
                path=_route(lambda _state, end=end: end),
                ends={end: end, FINALIZE_NODE: FINALIZE_NODE},
            )
    for branch_name, branch in new.branches.pop(tool_node, {}).items():
        ends = None if branch.ends is None else {**branch.ends, FINALIZE_NODE: FINALIZE_NODE}
        new.branches[name][branch_name] = BranchSpec(
            path=_route(branch.path.invoke, branch.path.ainvoke),
            ends=ends,
            input_schema=branch.input_schema,
        )
    new.waiting_edges = {
        (tuple(name if s == tool_node else s for s in starts), end)
        for starts, end in new.waiting_edges
    }
    if not new.branches[name]:  # a tool node with no way out: keep it that way
        new.branches[name][f"{name}:stop"] = BranchSpec(
            path=_route(lambda _state: END), ends={END: END, FINALIZE_NODE: FINALIZE_NODE}
        )
    new.edges.add((tool_node, name))


def stop_at_branches(new: StateGraph[Any, Any, Any, Any], skip: set[str]) -> None:
    """Every conditional edge goes to budget_finalize once the run must stop, without
    asking the user's router: a router may not cope with a state the refused node never
    wrote (the react-agent template's raises on a last message that is not an AIMessage)."""
    for source, branches in list(new.branches.items()):
        if source in skip:
            continue  # the tool node's branches move behind its tracker, already routed
        for branch_name, branch in list(branches.items()):
            ends = None if branch.ends is None else {**branch.ends, FINALIZE_NODE: FINALIZE_NODE}
            branches[branch_name] = BranchSpec(
                path=_route(branch.path.invoke, branch.path.ainvoke),
                ends=ends,
                input_schema=branch.input_schema,
            )


def _route(path: Any, apath: Any = None) -> Any:
    from langgraph._internal._runnable import RunnableCallable

    def route(state: Any, config: RunnableConfig) -> Any:
        run = _run_of(config)
        if run is not None and run.stop:
            return FINALIZE_NODE
        return path(state, config) if _takes_config(path) else path(state)

    async def aroute(state: Any, config: RunnableConfig) -> Any:
        run = _run_of(config)
        if run is not None and run.stop:
            return FINALIZE_NODE
        if apath is not None:
            return await apath(state, config)
        return path(state, config) if _takes_config(path) else path(state)

    return RunnableCallable(route, aroute, trace=False)


def _takes_config(fn: Any) -> bool:
    return getattr(fn, "__name__", "") in {"invoke", "ainvoke"}


def _guarded_tool_node(node: ToolNode) -> ToolNode:
    inner_wrap, inner_awrap = node._wrap_tool_call, node._awrap_tool_call
    key = node._messages_key

    def persisted(run: BudgetRun, out: Any) -> Any:
        # The spend is written in the same step as the tool result that incurred it, so a
        # checkpoint never holds one without the other (resume, crash, interrupt).
        if isinstance(out, ToolMessage) and run.persist:
            return Command(update={key: [out], SPEND_KEY: _snapshot(run)})
        return _with_spend(run, out, -1)

    def wrap(request: Any, execute: Any) -> Any:
        run = _run_of(request.runtime.config if request.runtime else {})
        call = (lambda: inner_wrap(request, execute)) if inner_wrap else (lambda: execute(request))
        if run is None:
            return call()
        return persisted(run, run.guard_tool_call(request.tool_call, call))

    async def awrap(request: Any, execute: Any) -> Any:
        run = _run_of(request.runtime.config if request.runtime else {})

        async def call() -> Any:
            if inner_awrap:
                return await inner_awrap(request, execute)
            return await execute(request)

        if run is None:
            return await call()
        return persisted(run, await run.aguard_tool_call(request.tool_call, call))

    # A user's sync-only wrapper: ToolNode runs the sync one in async runs too.
    return with_tool_wrappers(node, wrap, None if inner_wrap and not inner_awrap else awrap)


# --- the nodes ----------------------------------------------------------------------------


def _messages(state: Any, key: str) -> list[BaseMessage]:
    if isinstance(state, dict):
        return state.get(key) or []
    return getattr(state, key, None) or []


def _stop_or_continue(run: BudgetRun, reason: str, exc: BudgetExceeded | None) -> str | None:
    """Apply on_exhausted; returns the reason to finalize for, or None to go on."""
    mode = run.tracker.budget.on_exhausted
    if mode == "raise":
        raise exc or run.exceeded(reason)
    if mode == "interrupt" and run.apply_resume(interrupt(run.interrupt_payload(reason))):
        return None
    return reason


def _tracker_node(key: str) -> Any:
    from langgraph._internal._runnable import RunnableCallable

    def budget_tracker(state: Any, config: RunnableConfig) -> dict[str, Any]:
        run = _run_of(config)
        if run is None:
            return {}
        reason = run.stop or run.stop_reason(_messages(state, key))
        run.stop = _stop_or_continue(run, reason, None) if reason else None
        # The spend and the budget message rode in on the tool results; a top-up after an
        # interrupt is the only change left to persist.
        return {SPEND_KEY: _snapshot(run)} if reason else {}

    return RunnableCallable(budget_tracker, name=TRACKER_NODE, trace=False)


def _model_node(inner: Any, key: str) -> Any:
    """Run a node; if the budget refuses a model call in it, end the budget's way.

    A node that is a plain function (a ``RunnableCallable``, what ``add_node`` makes of a
    function) keeps its runnable and only has its function wrapped: an extra runnable layer
    around every model node was a measurable share of the per-step overhead."""
    from langgraph._internal._runnable import RunnableCallable

    if isinstance(inner, RunnableCallable) and not inner.explode_args:
        node = copy.copy(inner)
        if inner.func is not None:
            node.func = _guard_sync(inner.func, key)
        if inner.afunc is not None:
            node.afunc = _guard_async(inner.afunc, key)
        return node
    sync, async_ = _guard_sync(inner.invoke, key), _guard_async(inner.ainvoke, key)

    def run(state: Any, config: RunnableConfig) -> Any:
        return sync(state, config)

    async def arun(state: Any, config: RunnableConfig) -> Any:
        return await async_(state, config)

    return RunnableCallable(run, arun, name=getattr(inner, "name", None), trace=False)


def current_run() -> BudgetRun | None:
    """The budget of the `with_budget` run this code executes in (inside a node, a tool,
    or a model called from one), or None outside such a run."""
    try:
        run = _run_of(get_config())
    except RuntimeError:  # called outside a graph run
        run = None
    return run or ACTIVE_RUN.get()


def current_regime() -> str | None:
    """The current run's budget regime (``"HIGH"`` ... ``"CRITICAL"``), e.g. for
    ``BudgetRouter(regime=current_regime)``; None outside a budgeted run."""
    run = current_run()
    return None if run is None else run.tracker.regime().value


def _with_handler(callbacks: Any, handler: BaseCallbackHandler) -> Any:
    # Not merge_configs: it re-reads the ambient config of a calling run into every
    # argument, which would put a parent run's budget back over a child's.
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return manager
    return [*(callbacks or []), handler]


def _without_budget_handlers(callbacks: Any) -> Any:
    """The parent's callbacks minus its budget handler (a child charges its parent itself;
    both handlers would charge the parent twice)."""
    if isinstance(callbacks, list):
        return [
            h for h in callbacks if not isinstance(h, BudgetCallbackHandler | ToolChargeHandler)
        ]
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        for handler in list(manager.handlers):
            if isinstance(handler, BudgetCallbackHandler | ToolChargeHandler):
                manager.remove_handler(handler)
        return manager
    return callbacks


def current_tracker() -> BudgetTracker | None:
    """The live `BudgetTracker` of the current `with_budget` run, if any."""
    run = current_run()
    return None if run is None else run.tracker


def _guard_sync(func: Any, key: str) -> Any:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return func(*args, **kwargs)
        if run.stop:
            return None  # the run is finalizing: nothing more is paid for
        seq = run.tracker.seq
        while True:
            try:
                out = func(*args, **kwargs)
                break
            except BudgetExceeded as exc:
                if _stop_or_continue(run, str(exc), exc):
                    return _refused(run, str(exc))
        return _after(run, out, seq)

    return guarded


def _guard_async(func: Any, key: str) -> Any:
    @functools.wraps(func)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return await func(*args, **kwargs)
        if run.stop:
            return None
        seq = run.tracker.seq
        while True:
            try:
                out = await func(*args, **kwargs)
                break
            except BudgetExceeded as exc:
                if _stop_or_continue(run, str(exc), exc):
                    return _refused(run, str(exc))
        return _after(run, out, seq)

    return guarded


def _refused(run: BudgetRun, reason: str) -> Command[Any]:
    """A node whose model call the budget refused: the run goes to its one final answer
    (written by budget_finalize where the graph's output goes), whatever the node's own
    edges say; nodes still scheduled do nothing."""
    run.stop = run.stop or reason
    update = {SPEND_KEY: _snapshot(run)} if run.persist else None
    return Command(update=update, goto=FINALIZE_NODE)


def _after(run: BudgetRun, out: Any, seq: int) -> Any:
    out = _with_spend(run, out, seq)
    if not run.stop:
        return out
    # A sub-agent inside this node stopped on the budget this run spends from.
    if isinstance(out, Command):
        if out.graph is not None:
            return out
        return Command(update=out.update, goto=FINALIZE_NODE)
    return Command(update=out, goto=FINALIZE_NODE)


def _with_spend(run: BudgetRun, out: Any, seq: int) -> Any:
    """A node's output with the spend added when it spent something (``seq`` moved): a
    dict update, or a ``Command``'s update. Other outputs (lists, pydantic state) are left
    as they are; the next node that spends writes the snapshot."""
    if run.tracker.seq == seq or not run.persist:
        return out
    if isinstance(out, Command) and out.graph == Command.PARENT:
        return out  # the parent graph keeps its own spend (this run's is a child's)
    if isinstance(out, dict):
        return {**out, SPEND_KEY: _snapshot(run)}
    if isinstance(out, Command) and (out.update is None or isinstance(out.update, dict)):
        update = {**(out.update or {}), SPEND_KEY: _snapshot(run)}
        return Command(graph=out.graph, update=update, resume=out.resume, goto=out.goto)
    return out


def _finalize_node(plan: AnswerPlan) -> Any:
    from langgraph._internal._runnable import RunnableCallable

    def begin(config: RunnableConfig) -> tuple[BudgetRun, str] | None:
        run = _run_of(config)
        assert run is not None, "budget_finalize runs only inside a budgeted graph"
        if run.final_done:  # one final answer per run, however many nodes were refused
            return None
        run.final_done = True
        reason = run.stop or run.tracker.exhausted() or "budget exhausted"
        if run.parent is not None:
            run.parent.stop = run.parent.stop or reason
        return run, reason

    def budget_finalize(state: Any, config: RunnableConfig) -> dict[str, Any]:
        started = begin(config)
        if started is None:
            return {}
        run, reason = started
        return {**final_update(run, state, plan, reason), SPEND_KEY: _snapshot(run)}

    async def abudget_finalize(state: Any, config: RunnableConfig) -> dict[str, Any]:
        started = begin(config)
        if started is None:
            return {}
        run, reason = started
        return {**await afinal_update(run, state, plan, reason), SPEND_KEY: _snapshot(run)}

    return RunnableCallable(budget_finalize, abudget_finalize, name=FINALIZE_NODE, trace=False)
