"""Charging tools that a node runs itself, outside any tool node.

Plenty of graphs call tools from plain function nodes: the customer-support tutorial's
``fetch_user_info`` node runs ``tool.invoke({})``, the LangChain Academy research assistant
runs ``tavily_search.invoke(query)`` inside ``search_web``, some nodes run an inner
``ToolNode`` on their own. LangChain fires ``on_tool_start`` / ``on_tool_end`` for every
``BaseTool`` run, so a handler on the run's callbacks reserves each such call before its
body runs (refusing it with `BudgetExceeded`, which the node's guard turns into the run's
``on_exhausted``) and commits it after. Calls made through a guarded tool node are
reserved by the guard already and skipped here.

Re-runs: LangGraph runs an interrupted node again from its start on resume, so a tool
it called before ``interrupt()`` runs again, and its body cannot be skipped from a
callback (the node's own code calls it). The second run is real spend, so it is charged
again, under its own key: the books never say less than the provider bills, and a resume
that cannot pay for the re-run is refused before the body runs. Each call's first key is
the same in every run of the node (the tool call id, or the node's task id, the tool's
name and how many times the task called it), so a key already on the books is how a
re-run is told apart; a `ToolNode` (each call its own task, results replayed) runs and
charges each call once.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

if TYPE_CHECKING:
    from agent_budget.run import BudgetRun
    from agent_budget.tracker import Reservation

GUARDED: ContextVar[Any] = ContextVar("agent_budget_guarded_tool", default=None)
"""The `BudgetRun` whose tool guard is running a call: its handler must not charge it twice."""

_CHARGED: weakref.WeakSet[Any] = weakref.WeakSet()
"""Runs whose handler committed a tool call: their spend may be in no node's output."""


def charged_outside_state(run: BudgetRun) -> bool:
    """Whether ``run`` paid for tools through callbacks (asked once, at the run's end)."""
    if run in _CHARGED:
        _CHARGED.discard(run)
        return True
    return False


class ToolChargeHandler(BaseCallbackHandler):
    """Reserve and commit the tool calls of one budgeted run that no tool guard saw."""

    raise_error = True  # a refused reservation must stop the tool body, not be logged
    run_inline = True  # reserve in the tool's own thread and context, before the body runs
    # Only tool events (LangChain files them under "agent"): every other event skips it.
    ignore_llm = ignore_chat_model = ignore_chain = True
    ignore_retriever = ignore_retry = ignore_custom_event = True

    def __init__(self, run: BudgetRun) -> None:
        self.run = run
        self._held: dict[UUID, Reservation] = {}
        self._seen: Counter[str] = Counter()  # calls per (task, tool) or tool call id
        self._lock = threading.Lock()

    def _mine(self) -> bool:
        """True for a call made by this run's own nodes: a parent run's handler, merged
        into a sub-agent's callbacks by LangGraph, must leave the sub-agent's calls to it."""
        from agent_budget.integrations._state import current_run

        return current_run() is self.run

    def _key(self, name: str, call_id: Any, metadata: dict[str, Any] | None) -> str:
        """The same key in every run of the node: LangGraph's task id is fixed by the
        checkpoint and step it runs from, and a node calls its tools in the same order."""
        if call_id:
            base = f"{self.run.run_id}:{call_id}"
        else:
            task = (metadata or {}).get("langgraph_checkpoint_ns") or ""
            base = f"{self.run.run_id}:tool:{task}:{name}"
        with self._lock:
            n = self._seen[base]
            self._seen[base] += 1
        return f"{base}#{n}"

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if GUARDED.get() is not None or not self._mine():
            return  # (checked first: every call of a tool node comes here, guarded)
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        tracker = self.run.tracker
        key = self._key(name, kwargs.get("tool_call_id"), metadata)
        if tracker.committed(key):  # the node runs again (a resume): so does the body
            key = f"{key}@{run_id}"
        charge = tracker.tool_charge(name, key=key)
        res = tracker.reserve(charge)  # raises BudgetExceeded: the body never runs
        with self._lock:
            self._held[run_id] = res

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if not self._held:  # the usual case: every call went through a tool guard
            return
        with self._lock:
            res = self._held.pop(run_id, None)
        if res is not None:
            res.commit()
            _CHARGED.add(self.run)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        from agent_budget.run import settle_after_error

        with self._lock:
            res = self._held.pop(run_id, None)
        if res is not None:
            settle_after_error(res, error)
            _CHARGED.add(self.run)
