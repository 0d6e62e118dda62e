"""The nodes a budgeted graph runs besides the user's: the finalize node, and the guard
around every other node that ends the run the budget's way when a model call in it is
refused (``finalize`` / ``raise`` / ``interrupt``) instead of crashing it."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import END
from langgraph.types import Command, interrupt

from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._answer_path import (
    aanswer_turn,
    answer_turn,
    remember_answer,
    send_ahead,
)
from agent_budget.integrations._finalize import AnswerPlan, afinal_update, final_update
from agent_budget.integrations._graph_stop import after_node, answered, refused
from agent_budget.integrations._messages import (
    refreshed,
)
from agent_budget.integrations._private import RunnableCallable
from agent_budget.integrations._state import (
    SPEND_KEY,
    current_run,
    messages_of,
    run_of,
    snapshot,
    with_spend,
)
from agent_budget.integrations.callbacks import FINAL_CALL_METADATA, FINAL_PASS
from agent_budget.integrations.tool_node import FINALIZE_NODE, Continuation
from agent_budget.run import OWNER, BudgetRun
from agent_budget.stopping import StopReason

_FINAL_CONFIG: RunnableConfig = {
    "metadata": {FINAL_CALL_METADATA: True},
    "tags": ["agent_budget:final"],
}
_EXHAUSTED = StopReason("budget", "budget exhausted", "budget")


def on_exhausted(run: BudgetRun, reason: StopReason, exc: BudgetExceeded | None) -> bool:
    """Apply the budget's ``on_exhausted``: raise, or interrupt and return True if a
    person topped the budget up (go on), or return False (finalize)."""
    mode = run.tracker.budget.on_exhausted
    if mode == "raise":
        raise exc or run.exceeded(reason)
    return mode == "interrupt" and run.apply_resume(interrupt(run.interrupt_payload(reason)))


def finalize_node(
    key: str,
    model: BaseChatModel | None,
    continuations: Mapping[str, Continuation],
    plan: AnswerPlan | None = None,
) -> Runnable[Any, Any]:
    """`budget_finalize`: the stop policy, then one last model call without tools, whose
    answer goes where the graph's output goes (`AnswerPlan`). After a top-up
    (``interrupt``) the run goes on where the tool node would have gone, the last tool
    result showing the new budget. It answers once per run, however many nodes sent the
    run here."""
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
        source = (run.resume_to or [*continuations][:1] or [""])[0]
        go_on = continuations.get(source)
        goto = go_on(state, config) if go_on else END
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

    def budget_finalize(state: Any, config: RunnableConfig) -> Any:
        run, reason, decided = decide(state, config)
        if decided is not None:
            return decided
        nodes, handed = ahead(run)
        token = OWNER.set(run)
        try:
            update = final_update(run, model, state, plan, reason, handed)
        finally:
            OWNER.reset(token)
        return answered_update(run, update, nodes)

    async def abudget_finalize(state: Any, config: RunnableConfig) -> Any:
        run, reason, decided = decide(state, config)
        if decided is not None:
            return decided
        nodes, handed = ahead(run)
        token = OWNER.set(run)
        try:
            update = await afinal_update(run, model, state, plan, reason, handed)
        finally:
            OWNER.reset(token)
        return answered_update(run, update, nodes)

    return RunnableCallable(budget_finalize, abudget_finalize, name=FINALIZE_NODE, trace=False)


# --- every other node ---------------------------------------------------------------------


def guarded_node(
    inner: Any, key: str, model: BaseChatModel | None, *, answers: bool = False
) -> Any:
    """Run a node as the run's own (`OWNER`); a model call in it the budget refuses ends
    the run the budget's way. A node that ``answers`` (it writes the graph's answer: an
    edge to END in a state without messages) runs once more as the run's final answer
    instead, so the answer comes from the graph's own prompt. A node that is a plain
    function keeps its runnable and only has its function wrapped: an extra runnable layer
    around every model node was a measurable share of the per-step cost."""
    if isinstance(inner, RunnableCallable) and not inner.explode_args:
        node = copy.copy(inner)
        if inner.func is not None:
            node.func = _guard_sync(inner.func, key, answers)
        if inner.afunc is not None:
            node.afunc = _guard_async(inner.afunc, key, answers)
        return node
    sync = _guard_sync(inner.invoke, key, answers)
    async_ = _guard_async(inner.ainvoke, key, answers)

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


def _guard_sync(func: Callable[..., Any], key: str, answers: bool) -> Any:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return func(*args, **kwargs)
        if run.stop is not None:  # on its way to budget_finalize: only answer nodes run
            return answer_turn(run, func, args, kwargs)
        seq, shown = run.tracker.seq, None
        token = OWNER.set(run)
        try:
            while True:
                try:
                    out = func(*args, **kwargs)
                    break
                except BudgetExceeded as exc:
                    reason = StopReason(exc.limit, str(exc), "budget")
                    if on_exhausted(run, reason, exc):
                        args = _topped_up(args, run, key)
                        shown = messages_of(args[0], key)[-1:] if args else None
                        continue
                    if answers and not run.final_done:
                        final = FINAL_PASS.set([True])
                        run.final_done = True
                        try:
                            out = func(*args, **kwargs)
                        except BudgetExceeded:
                            run.final_done = False  # budget_finalize answers as it can
                            return refused(run, reason)
                        finally:
                            FINAL_PASS.reset(final)
                        return answered(run, reason, with_spend(run, out, seq))
                    return refused(run, reason)
        finally:
            OWNER.reset(token)
        out = with_spend(run, _with_shown(out, key, shown), seq)
        return out if run.stop is None else after_node(run, out)

    return guarded


def _guard_async(func: Callable[..., Any], key: str, answers: bool) -> Any:
    @functools.wraps(func)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return await func(*args, **kwargs)
        if run.stop is not None:
            return await aanswer_turn(run, func, args, kwargs)
        seq, shown = run.tracker.seq, None
        token = OWNER.set(run)
        try:
            while True:
                try:
                    out = await func(*args, **kwargs)
                    break
                except BudgetExceeded as exc:
                    reason = StopReason(exc.limit, str(exc), "budget")
                    if on_exhausted(run, reason, exc):
                        args = _topped_up(args, run, key)
                        shown = messages_of(args[0], key)[-1:] if args else None
                        continue
                    if answers and not run.final_done:
                        final = FINAL_PASS.set([True])
                        run.final_done = True
                        try:
                            out = await func(*args, **kwargs)
                        except BudgetExceeded:
                            run.final_done = False
                            return refused(run, reason)
                        finally:
                            FINAL_PASS.reset(final)
                        return answered(run, reason, with_spend(run, out, seq))
                    return refused(run, reason)
        finally:
            OWNER.reset(token)
        out = with_spend(run, _with_shown(out, key, shown), seq)
        return out if run.stop is None else after_node(run, out)

    return guarded


def _with_shown(out: Any, key: str, shown: list[Any] | None) -> Any:
    """Write the refreshed tool result (same id: it replaces the old one) with the node's
    output, so the history keeps what the model was shown."""
    if not shown or not isinstance(out, dict) or not isinstance(out.get(key), list):
        return out
    return {**out, key: [*shown, *out[key]]}
