"""A LangChain callback handler that puts every chat-model call on the budget.

At ``on_chat_model_start`` it reserves the call's worst case (the prompt's tokens, counted
conservatively, plus the declared ``max_tokens``) and raises `BudgetExceeded` if that does
not fit, so the call is never sent. At ``on_llm_end`` it commits the real cost from the
message's ``usage_metadata``. It works for any code that runs LangChain chat models:
``model.invoke(..., config={"callbacks": [BudgetCallbackHandler(tracker)]})``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from agent_budget.integrations._model_meter import (
    ModelMeter,
    TokenCounter,
    actual_charge,
    estimate_prompt_tokens,
)
from agent_budget.once import model_key
from agent_budget.run import OWNER, BudgetRun
from agent_budget.tracker import BudgetTracker, Reservation

__all__ = [
    "FINAL_CALL_METADATA",
    "FINAL_PASS",
    "BudgetCallbackHandler",
    "TokenCounter",
    "actual_charge",
    "estimate_prompt_tokens",
    "with_handler",
    "without_budget_handlers",
]

FINAL_CALL_METADATA = "agent_budget_final"
"""Metadata key marking the final-answer call, which may use the budget's reserve."""

FINAL_PASS: ContextVar[list[bool] | None] = ContextVar("agent_budget_final_pass", default=None)
"""Set while a graph's answer node runs once more as the run's final answer: its first
model call is that answer (it may use the reserve), whatever its metadata says."""


def _final_pass() -> bool:
    ticket = FINAL_PASS.get()
    if ticket:
        ticket.pop()  # one call, not every call the node makes
        return True
    return False


class _QuietRefusals(logging.Filter):
    """LangChain logs a warning for every exception a callback raises, even one that is
    meant to stop the call. A budget refusal is the budget working: not worth a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            len(args) == 3
            and args[0] == "BudgetCallbackHandler"
            and "BudgetExceeded" in str(args[2])
        )


logging.getLogger("langchain_core.callbacks.manager").addFilter(_QuietRefusals())


class BudgetCallbackHandler(BaseCallbackHandler):
    """Reserve before each chat-model call, commit its real cost after.

    ``BudgetCallbackHandler(tracker)`` puts the calls on a tracker; a budgeted run passes
    its `BudgetRun`, whose id then prefixes each call's key. A call made by a budgeted run
    below this handler's (a sub-agent: `OWNER` is a descendant) is skipped: that run
    charges this budget itself, through its parent link. LangGraph merges a calling
    run's callbacks into a sub-agent's config, so this handler does see such calls."""

    raise_error = True  # a refused reservation must stop the call, not be logged
    run_inline = True  # reserve in the caller's thread, before the request goes out
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(
        self,
        tracker: BudgetTracker | BudgetRun,
        *,
        token_counter: TokenCounter | None = None,
        tools: BaseCallbackHandler | None = None,
    ) -> None:
        """``tools``: a handler for the run's tool events (``on_tool_*``), called through
        this one. LangChain copies every handler into each child run's callback manager,
        several times per agent step: one handler instead of two is measurably cheaper."""
        self._tools = tools
        self.ignore_agent = tools is None  # tool events are "agent" events to LangChain
        self._prefix_id: str | None = None
        if isinstance(tracker, BudgetRun):
            self.tracker, self._prefix_id = tracker.tracker, tracker.run_id
        else:
            self.tracker = tracker
        self.meter = ModelMeter(token_counter)
        self._held: dict[UUID, tuple[Reservation, str | None]] = {}
        self._lock = threading.Lock()

    def count_tokens(self, messages: Sequence[BaseMessage], params: dict[str, Any]) -> int:
        """The prompt's tokens as this handler counts them for a reservation."""
        return self.meter.prompt_tokens(messages, params, None)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        owner = OWNER.get()
        if (
            owner is not None
            and owner.tracker is not self.tracker
            and _below(owner.tracker, self.tracker)
        ):
            return
        meta = metadata or {}
        params = invocation_params or kwargs.get("invocation_params") or {}
        model = meta.get("ls_model_name") or params.get("model") or params.get("model_name")
        max_tokens = meta.get("ls_max_tokens") or params.get("max_tokens")
        key = model_key(self._prefix_id, run_id) if self._prefix_id else str(run_id)
        charge = self.meter.worst_case(
            self.tracker,
            model,
            messages[0] if messages else [],
            max_tokens,
            params=params,
            key=key,
            service_tier=params.get("service_tier"),
            node=meta.get("langgraph_node"),
        )
        final = bool(meta.get(FINAL_CALL_METADATA)) or _final_pass()
        res = self.tracker.reserve(charge, final=final)
        with self._lock:
            self._held[run_id] = (res, model)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            held = self._held.pop(run_id, None)
        if held is None:
            return
        res, requested_model = held
        self.meter.settle(self.tracker, res, _first_message(response), requested_model)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            held = self._held.pop(run_id, None)
        if held is not None:
            held[0].release()

    def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
        if self._tools is not None:
            self._tools.on_tool_start(*args, **kwargs)

    def on_tool_end(self, *args: Any, **kwargs: Any) -> None:
        if self._tools is not None:
            self._tools.on_tool_end(*args, **kwargs)

    def on_tool_error(self, *args: Any, **kwargs: Any) -> None:
        if self._tools is not None:
            self._tools.on_tool_error(*args, **kwargs)


def _below(tracker: BudgetTracker, ancestor: BudgetTracker) -> bool:
    parent = tracker.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


def with_handler(callbacks: Any, handler: BaseCallbackHandler) -> Any:
    # Not merge_configs: it re-reads the ambient config of a calling run into every
    # argument, which would put a parent run's budget back over a child's.
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return manager
    return [*(callbacks or []), handler]


def without_budget_handlers(callbacks: Any) -> Any:
    """The parent's callbacks minus its budget handler (a child charges its parent itself).
    LangGraph may merge them back into a sub-agent's run: the handler's own check
    (`OWNER`) is what keeps it from charging twice."""
    if isinstance(callbacks, list):
        return [h for h in callbacks if not isinstance(h, BudgetCallbackHandler)]
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        for handler in list(manager.handlers):
            if isinstance(handler, BudgetCallbackHandler):
                manager.remove_handler(handler)
        return manager
    return callbacks


def _first_message(response: LLMResult) -> BaseMessage | None:
    for generations in response.generations:
        for gen in generations:
            msg = getattr(gen, "message", None)
            if msg is not None:
                return msg
    return None
