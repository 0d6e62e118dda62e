"""What a model call may cost before it is sent and what it did cost after, the same for
every adapter: the callback handler (which `with_budget` uses) and `BudgetMiddleware` both
price their calls through one `ModelMeter`.

The worst case is the prompt's tokens (counted by the user's ``token_counter``, else a
deliberately high estimate counted incrementally) plus the declared maximum output; the
real cost comes from the reply's ``usage_metadata``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from agent_budget.errors import UnknownPrice
from agent_budget.prices.usage import TokenUsage
from agent_budget.tracker import BudgetTracker, Charge, Reservation

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


class ModelMeter:
    """Prices one run's model calls (one per handler, or per run in the middleware): its
    prompt counter remembers the last history, so each call counts only what is new."""

    def __init__(self, token_counter: TokenCounter | None = None) -> None:
        self.token_counter = token_counter
        self._prefix = _PrefixCounter()

    def prompt_tokens(
        self, messages: Sequence[BaseMessage], params: dict[str, Any], tools_chars: int | None
    ) -> int:
        """The prompt's tokens; ``tools_chars`` (the tool schemas' size, when the adapter
        knows it cheaper than from ``params["tools"]``) replaces serialising them."""
        if self.token_counter is not None:
            return self.token_counter(messages, params)
        chars = self._prefix.chars(messages)
        if tools_chars is not None:
            return _estimate(chars + tools_chars, len(messages), {})
        return _estimate(chars, len(messages), params)

    def worst_case(
        self,
        tracker: BudgetTracker,
        model: str | None,
        messages: Sequence[BaseMessage],
        max_tokens: int | None,
        *,
        params: dict[str, Any] | None = None,
        tools_chars: int | None = None,
        **meta: Any,
    ) -> Charge:
        """The most the call can cost (``meta``: the charge's key, node, service tier)."""
        prompt = self.prompt_tokens(messages, params or {}, tools_chars)
        return tracker.model_worst_case(model, prompt, max_tokens, **meta)

    @staticmethod
    def settle(
        tracker: BudgetTracker,
        res: Reservation,
        message: BaseMessage | None,
        requested_model: str | None = None,
    ) -> Charge:
        """Commit what the call really cost."""
        return res.commit(actual_charge(tracker, message, res.charge, requested_model))
