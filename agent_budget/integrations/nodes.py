"""The nodes a budgeted graph runs besides the user's: the finalize node, and the guard
around every other node that ends the run the budget's way when a model call in it is
refused (``finalize`` / ``raise`` / ``interrupt``) instead of crashing it."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import END
from langgraph.types import Command, interrupt

from agent_budget._steps import Steps, adrive, ainvoke, drive, invoke
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._answer_path import (
    answer_steps,
    remember_answer,
    send_ahead,
)
from agent_budget.integrations._finalize import AnswerPlan, final_steps
from agent_budget.integrations._graph_stop import after_node, answered, refused
from agent_budget.integrations._messages import refreshed
from agent_budget.integrations._private import RunnableCallable
from agent_budget.integrations._state import (
    SPEND_KEY,
    current_run,
    messages_of,
    run_of,
    snapshot,
    with_spend,
)
from agent_budget.integrations.callbacks import FINAL_PASS
from agent_budget.integrations.tool_node import BLOCK_MARK, FINALIZE_NODE
from agent_budget.run import OWNER, BudgetRun
from agent_budget.stopping import StopReason

_EXHAUSTED = StopReason("budget", "budget exhausted", "budget")


def on_exhausted(run: BudgetRun, reason: StopReason, exc: BudgetExceeded | None) -> bool:
    """Apply the budget's ``on_exhausted``: raise, or interrupt and return True if a
    person topped the budget up (go on), or return False (finalize)."""
    mode = run.tracker.budget.on_exhausted
    if mode == "raise":
        raise exc or run.exceeded(reason)
    return mode == "interrupt" and run.apply_resume(interrupt(run.interrupt_payload(reason)))


def finalize_node(
    model: BaseChatModel | None = None,
    *,
    messages_key: str = "messages",
    plan: AnswerPlan | None = None,
) -> Runnable[Any, Any]:
    """The finalize node: add it as `FINALIZE_NODE` (``"budget_finalize"``) with an edge
    to END::

        graph.add_node(FINALIZE_NODE, finalize_node(model))
        graph.add_edge(FINALIZE_NODE, END)

    It applies ``on_exhausted`` (raise, interrupt, or finalize), then makes one last model
    call without tools (``model``, sized to what is left), whose answer goes where the
    graph's output goes (`AnswerPlan`; by default one more AIMessage). After a top-up
    (``interrupt``) the run goes back to the node that stopped, its last tool result
    showing the new budget. It answers once per run, however many nodes sent the run
    here."""
    key = messages_key
    plan = plan or AnswerPlan(key, ())

    def decide(state: Any, config: RunnableConfig) -> tuple[BudgetRun, StopReason, Any]:
        run = run_of(config)
        if run is None:
            raise RuntimeError(f"{FINALIZE_NODE} runs only inside a budgeted graph")
        reason = run.stop or run.tracker.first_spent() or _EXHAUSTED
        if run.final_done:
            return run, reason, {}
        if run.decided or not on_exhausted(run, reason, None):
            run.final_done = True
            if run.parent is not None and run.parent.stop is None:
                run.parent.stop = reason  # a child on its parent's limits stops it too
            return run, reason, None
        goto = (run.resume_to or [END])[0]  # the node that stopped (`stopping`)
        run.resume_to = None
        update: dict[str, Any] = {SPEND_KEY: snapshot(run)}
        shown = refreshed(messages_of(state, key), run.tracker)
        if shown is not None:
            update[key] = [shown]
        return run, reason, Command(update=update, goto=goto)

    def ahead(run: BudgetRun) -> tuple[list[str], bool]:
        """The graph's answer nodes the run goes on to, and whether one of them calls a
        model (it then writes the answer with the final pass)."""
        nodes = send_ahead(run, plan.path, run.resume_to or ())
        return nodes, bool(plan.path and set(nodes) & plan.path.with_model)

    def answered_update(run: BudgetRun, update: dict[str, Any], nodes: list[str]) -> Any:
        """The final answer with the spend; on to the answer nodes ahead, if any."""
        update[SPEND_KEY] = snapshot(run)
        if not nodes:
            return update
        remember_answer(run, plan.answer_text(update), plan.text_keys)
        return Command(update=update, goto=nodes)

    def steps(state: Any, config: RunnableConfig) -> Steps[Any]:
        """The finalize node, free of sync or async (`final_steps` asks for its call)."""
        run, reason, decided = decide(state, config)
        if decided is not None:
            return decided
        nodes, handed = ahead(run)
        token = OWNER.set(run)
        try:
            update = yield from final_steps(run, model, state, plan, reason, handed)
        finally:
            OWNER.reset(token)
        return answered_update(run, update, nodes)

    def budget_finalize(state: Any, config: RunnableConfig) -> Any:
        return drive(steps(state, config), invoke)

    async def abudget_finalize(state: Any, config: RunnableConfig) -> Any:
        return await adrive(steps(state, config), ainvoke)

    node = RunnableCallable(budget_finalize, abudget_finalize, name=FINALIZE_NODE, trace=False)
    setattr(node, BLOCK_MARK, True)
    return node


# --- every other node ---------------------------------------------------------------------


def guarded_node(
    inner: Any,
    key: str = "messages",
    model: BaseChatModel | None = None,
    *,
    answers: bool = False,
    name: str | None = None,
) -> Any:
    """Run a node as the run's own (`OWNER`). On entry it decides whether the run must
    stop (a limit spent, every call of the last tool step refused, a guard tripped): the
    tool node before it needs no route of its own for that. A model call in it that the
    budget refuses ends the run the budget's way. A node that ``answers`` (it writes the
    graph's answer: an edge to END in a state without messages) runs once more as the
    run's final answer instead, so the answer comes from the graph's own prompt. A node
    that is a plain function keeps its runnable and only has its function wrapped: an
    extra runnable layer around every model node was a measurable share of a step."""
    node = name or getattr(inner, "name", None) or ""
    if isinstance(inner, RunnableCallable) and not inner.explode_args:
        wrapped = copy.copy(inner)
        if inner.func is not None:
            wrapped.func = _guard_sync(inner.func, key, answers, node)
        if inner.afunc is not None:
            wrapped.afunc = _guard_async(inner.afunc, key, answers, node)
        return wrapped
    sync = _guard_sync(inner.invoke, key, answers, node)
    async_ = _guard_async(inner.ainvoke, key, answers, node)

    def run(state: Any, config: RunnableConfig) -> Any:
        return sync(state, config)

    async def arun(state: Any, config: RunnableConfig) -> Any:
        return await async_(state, config)

    return RunnableCallable(run, arun, name=getattr(inner, "name", None), trace=False)


def _topped_up(args: tuple[Any, ...], run: BudgetRun, key: str) -> tuple[Any, ...]:
    """The node's input with its last tool result showing the budget after a top-up."""
    state = args[0] if args else None
    if not isinstance(state, dict):
        return args
    msgs = messages_of(state, key)
    shown = refreshed(msgs, run.tracker)
    if shown is None:
        return args
    return ({**state, key: [*msgs[:-1], shown]}, *args[1:])


def _guard_steps(
    run: BudgetRun,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    key: str,
    answers: bool,
    node: str,
) -> Steps[Any]:
    """The guard's logic, free of sync or async: it yields each call of the node's
    function to make, is sent its result or thrown its error, and returns the node's
    output. `_guard_sync` and `_guard_async` only drive it."""
    if run.stop is not None:  # on its way to budget_finalize: only answer nodes run
        return (yield from answer_steps(run, args, kwargs))
    if not answers and must_stop(run):  # an answer node answers as the final call instead
        return stopping(run, node)
    seq, shown = run.tracker.seq, None
    token = OWNER.set(run)
    try:
        while True:
            try:
                out = yield args, kwargs
                break
            except BudgetExceeded as exc:
                reason = StopReason(exc.limit, str(exc), "budget")
                if on_exhausted(run, reason, exc):
                    args = _topped_up(args, run, key)
                    shown = messages_of(args[0], key)[-1:] if args else None
                    continue
                if not answers or run.final_done:
                    return refused(run, reason)
                final = FINAL_PASS.set([True])
                run.final_done = True
                try:
                    out = yield args, kwargs
                except BudgetExceeded:
                    run.final_done = False  # budget_finalize answers as it can
                    return refused(run, reason)
                finally:
                    FINAL_PASS.reset(final)
                return answered(run, reason, with_spend(run, out, seq))
    finally:
        OWNER.reset(token)
    out = with_spend(run, _with_shown(out, key, shown), seq)
    return out if run.stop is None else after_node(run, out)


def _guard_sync(func: Callable[..., Any], key: str, answers: bool, node: str) -> Any:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return func(*args, **kwargs)
        return drive(_guard_steps(run, args, kwargs, key, answers, node), func)

    return guarded


def _guard_async(func: Callable[..., Any], key: str, answers: bool, node: str) -> Any:
    @functools.wraps(func)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return await func(*args, **kwargs)
        return await adrive(_guard_steps(run, args, kwargs, key, answers, node), func)

    return guarded


def must_stop(run: BudgetRun) -> bool:
    """Decide, from the tool results the run noted since it last looked, whether the run
    must stop (sets ``run.stop``)."""
    if run.stop is None:
        run.stop = run.stop_reason(run.take_step())
    return run.stop is not None


def stopping(run: BudgetRun, node: str) -> Command[Any]:
    """What a node returns that finds on entry that the run must stop: the run goes to
    ``budget_finalize``, which applies ``on_exhausted``; after a top-up it comes back
    here."""
    run.resume_to = [node] if node else None
    if not run.persist:
        return Command(goto=FINALIZE_NODE)
    snap = snapshot(run)
    if node:
        snap["stopped_at"] = node
    return Command(update={SPEND_KEY: snap}, goto=FINALIZE_NODE)


def _with_shown(out: Any, key: str, shown: list[Any] | None) -> Any:
    """Write the refreshed tool result (same id: it replaces the old one) with the node's
    output, so the history keeps what the model was shown."""
    if not shown or not isinstance(out, dict) or not isinstance(out.get(key), list):
        return out
    return {**out, key: [*shown, *out[key]]}
