"""A LangChain callback handler that puts every chat-model call on the budget.

At ``on_chat_model_start`` it reserves the call's worst case (the prompt's tokens, counted
conservatively, plus the declared ``max_tokens``) and raises `BudgetExceeded` if that does
not fit, so the call is never sent. At ``on_llm_end`` it commits the real cost from the
message's ``usage_metadata``. It works for any code that runs LangChain chat models:
``model.invoke(..., config={"callbacks": [BudgetCallbackHandler(tracker)]})``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from agent_budget.errors import UnknownPrice
from agent_budget.once import model_key
from agent_budget.prices.usage import TokenUsage
from agent_budget.run import OWNER, BudgetRun
from agent_budget.tracker import BudgetTracker, Charge, Reservation

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


TokenCounter = Callable[[Sequence[BaseMessage], dict[str, Any]], int]


def estimate_prompt_tokens(messages: Sequence[BaseMessage], params: dict[str, Any]) -> int:
    """A deliberately high estimate of a prompt's tokens: one token per 3 characters of
    text, tool schemas included, plus 4 per message. BPE tokenizers average about 4
    characters per token on English, so a worst-case reservation stays a worst case."""
    chars = sum(_message_chars(m) for m in messages)
    return _estimate(chars, len(messages), params)


def _estimate(chars: int, n_messages: int, params: dict[str, Any]) -> int:
    tools = params.get("tools") or params.get("functions")
    if tools:
        chars += _schema_chars(tools)
    return math.ceil(chars / 3) + 4 * n_messages


_schema_cache: dict[int, tuple[Any, int]] = {}


def _schema_chars(tools: Any) -> int:
    # A model's bound tool list is one object for the life of the binding: serialise it
    # once, not on every call (the entry keeps the object alive, so its id stays its own).
    hit = _schema_cache.get(id(tools))
    if hit is not None and hit[0] is tools:
        return hit[1]
    chars = len(json.dumps(tools, default=str))
    if len(_schema_cache) > 256:
        _schema_cache.clear()
    _schema_cache[id(tools)] = (tools, chars)
    return chars


def _message_chars(m: BaseMessage) -> int:
    content = m.content
    chars = len(content) if isinstance(content, str) else len(json.dumps(content, default=str))
    for call in getattr(m, "tool_calls", None) or ():
        # name, id, and each argument's text: close to the serialized size, far cheaper.
        chars += 40 + len(call.get("name") or "") + sum(len(str(v)) for v in call["args"].values())
    return chars


class _PrefixCounter:
    """Counts a growing history incrementally. An agent's next prompt is its last prompt
    plus a few messages; re-counting all of it on every call made the per-step cost grow
    with the length of the run. The cached count is used only when the new prompt starts
    with the same first message and has the same message at the old end; otherwise (a
    different system prompt, an edited history) it is counted from scratch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0
        self._first: Any = None
        self._last_id: str | None = None
        self._chars = 0

    def chars(self, messages: Sequence[BaseMessage]) -> int:
        if not messages:
            return 0
        first = _identity(messages[0])
        with self._lock:
            n, known = self._n, self._chars
            same = first == self._first and self._last_id is not None
            same = same and 0 < n <= len(messages) and messages[n - 1].id == self._last_id
        if not same:
            n, known = 0, 0
        total = known + sum(_message_chars(m) for m in messages[n:])
        if messages[-1].id:
            with self._lock:
                self._n, self._last_id, self._chars = len(messages), messages[-1].id, total
                self._first = first
        return total


def _identity(message: BaseMessage) -> Any:
    # A system prompt is rebuilt on every call (no id): compare its text instead.
    return message.id or (message.type, str(message.content))


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
        self.count_tokens = token_counter or self._estimate
        self._prefix = _PrefixCounter()
        self._held: dict[UUID, tuple[Reservation, str | None]] = {}
        self._lock = threading.Lock()

    def _estimate(self, messages: Sequence[BaseMessage], params: dict[str, Any]) -> int:
        return _estimate(self._prefix.chars(messages), len(messages), params)

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
        prompt = self.count_tokens(messages[0] if messages else [], params)
        key = model_key(self._prefix_id, run_id) if self._prefix_id else str(run_id)
        charge = self.tracker.model_worst_case(
            model,
            prompt,
            max_tokens,
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
        res.commit(
            actual_charge(self.tracker, _first_message(response), res.charge, requested_model)
        )

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


def actual_charge(
    tracker: BudgetTracker,
    message: BaseMessage | None,
    reserved: Charge,
    requested_model: str | None = None,
) -> Charge:
    """What a model call really cost, from its message's ``usage_metadata`` with its details
    (cache reads and writes, reasoning, audio: each priced apart where the model's price has
    them). A call that reports no usage is charged its reserved worst case, not a guess."""
    usage = getattr(message, "usage_metadata", None) if message is not None else None
    if not usage:
        return reserved
    response = getattr(message, "response_metadata", None) or {}
    reported = response.get("model_name")
    used = TokenUsage.from_usage_metadata(usage, service_tier=response.get("service_tier"))
    requested = requested_model or reserved.name or None
    unpriced: Charge | None = None
    for name in (reported, requested) if reported else (requested,):
        try:
            charge = tracker.model_charge(
                name,
                used.input_tokens,
                used.output_tokens,
                key=reserved.key,
                usage=used,
                **{k: v for k, v in reserved.meta.items() if k != "unpriced"},
            )
        except UnknownPrice:
            continue
        if not charge.meta.get("unpriced"):
            return charge
        unpriced = unpriced or charge  # a name with a price (the requested one) wins
    return unpriced or reserved


def _first_message(response: LLMResult) -> BaseMessage | None:
    for generations in response.generations:
        for gen in generations:
            msg = getattr(gen, "message", None)
            if msg is not None:
                return msg
    return None
