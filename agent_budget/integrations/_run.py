"""What a budgeted run does, shared by the LangGraph wrapper and the LangChain middleware:
guard a tool call (reserve, run, commit, retry), tell when the run must stop, and build the
final answer's prompt and size."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_messages,
)
from langgraph.types import Command
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.stop import stop_base

from agent_budget.errors import BudgetExceeded, UnknownPrice
from agent_budget.integrations._tool_charges import GUARDED
from agent_budget.integrations.callbacks import estimate_prompt_tokens
from agent_budget.tracker import BudgetTracker, escape_budget_tags

ACTIVE_RUN: ContextVar[BudgetRun | None] = ContextVar("agent_budget_run", default=None)
"""The run whose tool is executing: a sub-agent called from inside a tool finds its parent
budget here (LangGraph copies the context into the sub-agent's node threads)."""

REFUSED = "agent_budget"
"""`response_metadata` key on a ToolMessage for a call the budget refused."""
MIN_FINAL_TOKENS = 16


@dataclass(frozen=True)
class Retry:
    """Retry policy for tool calls. Each attempt is reserved and charged on its own; retries
    stop as soon as the budget cannot pay for another attempt."""

    attempts: int = 1
    on: tuple[type[BaseException], ...] = (Exception,)
    error_messages: bool = True  # also retry a ToolMessage with status="error"
    wait_initial: float = 0.2
    wait_max: float = 5.0


ToolResult = Any  # ToolMessage | Command, as a ToolNode wrapper returns


class BudgetRun:
    """One run's (or thread's) budget logic around a `BudgetTracker`."""

    def __init__(
        self,
        tracker: BudgetTracker,
        *,
        final_model: BaseChatModel | None = None,
        retry: Retry | None = None,
        annotate_results: bool = False,
        on_warning: WarningCallback | None = None,
    ) -> None:
        self.tracker = tracker
        self.on_warning = on_warning
        if tracker.budget.warn_at:
            tracker.add_warning_listener(self._warned, key="run")
        self.final_model = final_model
        self.retry = retry or Retry()
        # Append the budget message to each tool result as it is written: it then costs no
        # extra state write per step (a separate message write grows with the history).
        self.annotate_results = annotate_results
        self.run_id = uuid.uuid4().hex  # part of every idempotency key of this run
        self.stop: str | None = None  # set when the run must finalize
        self.final_done = False  # the run's one final answer is written
        self.parent: BudgetRun | None = None  # the run this one spends from, as a child
        self.guard_reason: str | None = None  # set when a guard trips
        self.stop_limit: str | None = None  # the limit behind the last stop reason
        self.downgraded = False
        self.persist = True  # write the spend to graph state (a checkpointer keeps it)
        self._lock = threading.Lock()
        self._failed: dict[str, int] = {}  # failed attempts per tool call id
        self._results: dict[str | None, Any] = {}  # what each paid call returned, by key
        self._repeats: dict[str, int] = {}  # calls per (tool, arguments)
        self._seen_results: set[int] = set()
        self._idle = 0
        self._last_step: str | None = None

    # --- soft limits --------------------------------------------------------------------

    def _warned(self, tracker: BudgetTracker, threshold: float, text: str) -> None:
        """A warn_at threshold crossed: tell the user's callback and the graph's stream."""
        if self.on_warning is not None:
            self.on_warning(threshold, text)
        emit({"agent_budget": "warning", "threshold": threshold, "message": text})

    def downgrade_to(self, model: BaseChatModel) -> bool:
        """Whether model calls should go to the budget's cheaper model now; records the
        switch (once per run) with its reason."""
        rule = self.tracker.budget.downgrade
        if rule is None:
            return False
        left = self.tracker.fraction_left()
        if not rule.active(left):
            return False
        if not self.downgraded:
            self.downgraded = True
            reason = f"regime {self.tracker.regime().value}: {left:.0%} of the budget left"
            event = self.tracker.record_event(
                "downgrade", to=rule.model, model=model_name(model), reason=reason
            )
            emit({"agent_budget": "downgrade", **event})
        return True

    # --- tool calls ---------------------------------------------------------------------

    def _annotate(self, out: Any, call_id: str | None = None) -> Any:
        if not self.annotate_results:
            return out
        text = self.tracker.message()
        return map_tool_messages(out, lambda m: with_budget_text(m, text), call_id)

    def refusal(self, call: dict[str, Any], exc: BudgetExceeded) -> ToolMessage:
        return self._annotate(self._refusal(call, exc))

    def _refusal(self, call: dict[str, Any], exc: BudgetExceeded) -> ToolMessage:
        return ToolMessage(
            content=f"Not run: {exc}",
            name=call.get("name"),
            tool_call_id=call.get("id") or "",
            status="error",
            response_metadata={REFUSED: {"refused": exc.limit}},
        )

    def _begin(self, call: dict[str, Any], n: int) -> tuple[Any, Any]:
        """Reserve attempt ``n`` of a call: (reservation, None) to run it, or (None, what to
        return instead): a refusal, or the result of this very call already paid for (a node
        LangGraph runs again, e.g. under a RetryPolicy, must not run or pay for it twice)."""
        cid = call.get("id") or ""
        attempt = n + self._failed.get(cid, 0)  # after a failed attempt, a rerun is a new one
        key = f"{self.run_id}:{cid}#{attempt}"
        done = self._results.get(key)
        if done is not None:
            return None, done
        try:
            self._check_repeats(call)
            charge = self.tracker.tool_charge(
                call["name"], key=key, tool_call_id=cid, attempt=attempt, node=self._node()
            )
            return self.tracker.reserve(charge), None
        except BudgetExceeded as exc:
            return None, self.refusal(call, exc)

    def _end(self, call: dict[str, Any], res: Any, out: Any, exc: BaseException | None) -> Any:
        """Settle a call; what the tool node returns for it."""
        if exc is None:
            res.commit()
            out = self._annotate(_escape(out, call.get("id")), call.get("id"))
            self._results[res.charge.key] = out
            return out
        if isinstance(exc, BudgetExceeded):
            # The tool itself asked for more than is left (a model call inside it, a
            # sub-agent): it did not finish, so it is not charged, and the run goes on to
            # decide (finalize / raise / interrupt) like any other refusal.
            res.release()
            return self.refusal(call, exc)
        if settle_after_error(res, exc):
            cid = call.get("id") or ""
            self._failed[cid] = self._failed.get(cid, 0) + 1
        raise exc

    def _check_repeats(self, call: dict[str, Any]) -> None:
        limit = self.tracker.budget.guards.repeat_calls
        if limit is None:
            return
        key = call["name"] + json.dumps(call.get("args"), sort_keys=True, default=str)
        with self._lock:
            seen = self._repeats.get(key, 0)
            if seen >= limit:
                self.guard_reason = (
                    f"loop guard: {call['name']} was called {seen} times with the same arguments"
                )
                self.stop_limit = "guards.repeat_calls"
                raise BudgetExceeded(
                    "guards.repeat_calls", 1, 0, seen, limit, detail=self.guard_reason
                )
            self._repeats[key] = seen + 1

    @staticmethod
    def _node() -> str | None:
        try:
            from langgraph.config import get_config

            return (get_config().get("metadata") or {}).get("langgraph_node")
        except RuntimeError:
            return None

    def guard_tool_call(
        self, call: dict[str, Any], execute: Callable[[], ToolResult]
    ) -> ToolResult:
        """Run ``execute`` if the budget can pay for it, charging every attempt."""
        if self.retry.attempts <= 1:
            return self._attempt(call, execute, 1)
        counter = iter(range(1, self.retry.attempts + 1))
        retrying = Retrying(**self._retry_kwargs(call))
        return retrying(lambda: self._attempt(call, execute, next(counter)))

    async def aguard_tool_call(
        self, call: dict[str, Any], execute: Callable[[], Awaitable[ToolResult]]
    ) -> ToolResult:
        if self.retry.attempts <= 1:
            return await self._aattempt(call, execute, 1)
        counter = iter(range(1, self.retry.attempts + 1))
        retrying = AsyncRetrying(**self._retry_kwargs(call))
        return await retrying(lambda: self._aattempt(call, execute, next(counter)))

    def _attempt(self, call: dict[str, Any], execute: Callable[[], ToolResult], n: int) -> Any:
        res, instead = self._begin(call, n)
        if res is None:
            return instead
        token, guarded = ACTIVE_RUN.set(self), GUARDED.set(self)
        try:
            out = execute()
        except BaseException as exc:
            return self._end(call, res, None, exc)
        finally:
            GUARDED.reset(guarded)
            ACTIVE_RUN.reset(token)
        return self._end(call, res, out, None)

    async def _aattempt(
        self, call: dict[str, Any], execute: Callable[[], Awaitable[ToolResult]], n: int
    ) -> Any:
        res, instead = self._begin(call, n)
        if res is None:
            return instead
        token, guarded = ACTIVE_RUN.set(self), GUARDED.set(self)
        try:
            out = await execute()
        except BaseException as exc:
            return self._end(call, res, None, exc)
        finally:
            GUARDED.reset(guarded)
            ACTIVE_RUN.reset(token)
        return self._end(call, res, out, None)

    def _retry_kwargs(self, call: dict[str, Any]) -> dict[str, Any]:
        return retry_kwargs(
            self.retry, lambda: self.tracker.fits(self.tracker.tool_charge(call["name"]))
        )

    # --- when to stop -------------------------------------------------------------------

    def stop_reason(self, messages: Sequence[BaseMessage]) -> str | None:
        """Why the run must stop: a global limit is spent, or every tool call of the last
        step was refused (the model keeps asking for what the budget will not pay)."""
        if self.guard_reason:
            return self.guard_reason
        spent = self.tracker.spent_limit()
        if spent is not None:
            self.stop_limit = spent[0]
            return spent[3]
        step = last_tool_step(messages)
        reason = self._idle_reason(step)
        if reason:
            return reason
        refused = [
            m.response_metadata[REFUSED]["refused"] for m in step if REFUSED in m.response_metadata
        ]
        if step and len(refused) == len(step):
            self.stop_limit = refused[0]
            return (
                "budget refused every tool call of the last step ("
                + ", ".join(sorted(set(refused)))
                + ")"
            )
        return None

    def _idle_reason(self, step: list[ToolMessage]) -> str | None:
        """The idle guard: N steps in a row whose every result was seen before."""
        limit = self.tracker.budget.guards.idle_steps
        if limit is None or not step or step[0].id == self._last_step:
            return None
        self._last_step = step[0].id
        results = {hash((m.name, _without_budget(m.content))) for m in step}
        self._idle = self._idle + 1 if results <= self._seen_results else 0
        self._seen_results |= results
        if self._idle >= limit:
            self.guard_reason = (
                f"idle guard: {self._idle} steps in a row brought no new tool results"
            )
            self.stop_limit = "guards.idle_steps"
        return self.guard_reason

    def exceeded(self, reason: str) -> BudgetExceeded:
        """The error for ``on_exhausted="raise"``, naming the limit that ended the run."""
        limit = self.stop_limit or "budget"
        left = self.tracker.remaining().get(limit, 0)
        return BudgetExceeded(limit, "another call", max(left, 0), detail=reason)

    def interrupt_payload(self, reason: str) -> dict[str, Any]:
        return {
            "type": "agent_budget.exhausted",
            "reason": reason,
            "budget": self.tracker.message(),
            "remaining": {k: str(v) for k, v in self.tracker.remaining().items()},
            "resume_with": "a dict of limits to add (e.g. {'usd': 0.5}), or 'finalize'",
        }

    def apply_resume(self, value: Any) -> bool:
        """Apply a person's answer to an interrupt. True: topped up, go on; False: finalize."""
        if isinstance(value, dict) and value:
            self.tracker.top_up(**value)
            self.guard_reason, self._idle = None, 0
            self._repeats.clear()
            return True
        return False

    # --- the final answer ---------------------------------------------------------------

    def final_prompt(self, messages: Sequence[BaseMessage], reason: str) -> list[BaseMessage]:
        note = HumanMessage(
            content=(
                f"The budget is exhausted: {reason}. {self.tracker.message()}\n"
                "Do not call any tool. Using only the information above, give your best "
                "final answer now, and say briefly what you could not check."
            )
        )
        return [*_answered(messages), note]

    def sized_final_model(
        self, model: BaseChatModel, prompt: Sequence[BaseMessage]
    ) -> BaseChatModel | None:
        """The final model with ``max_tokens`` cut to what is left, or None if even a short
        answer cannot be paid for."""
        t = self.tracker
        name = model_name(model)
        tokens = estimate_prompt_tokens(prompt, {})
        declared = getattr(model, "max_tokens", None)
        want = declared or t.budget.default_max_output_tokens
        if t.fits(t.model_worst_case(name, tokens, want), final=True):
            return model
        price = t.prices.model_price(name)
        b, s = t.limits, t.spent
        caps: list[float] = [want]
        if b.usd is not None and price.output_per_token > 0:
            left = b.usd - s.usd - t.held.usd - price.input_per_token * tokens
            caps.append(math.floor(left / price.output_per_token))
        if b.tokens.output is not None:
            caps.append(b.tokens.output - s.output_tokens)
        if b.tokens.total is not None:
            caps.append(b.tokens.total - s.total_tokens - tokens)
        n = int(min(caps))
        if n < MIN_FINAL_TOKENS or not t.fits(t.model_worst_case(name, tokens, n), final=True):
            return None
        if "max_tokens" in type(model).model_fields:
            return model.model_copy(update={"max_tokens": n})
        return None

    def unpaid_final_answer(self, reason: str) -> AIMessage:
        return AIMessage(
            content=(
                f"I have to stop: {reason}, and what is left cannot pay for a final answer. "
                f"{self.tracker.message()}"
            ),
            response_metadata={REFUSED: {"final": "unpaid"}},
        )


def retry_kwargs(policy: Retry, can_pay: Callable[[], bool]) -> dict[str, Any]:
    """tenacity settings: retry what ``policy`` names, never a budget refusal, and stop
    as soon as the budget cannot pay for another attempt."""

    class unaffordable(stop_base):
        def __call__(self, retry_state: RetryCallState) -> bool:
            return not can_pay()

    def retryable_exc(exc: BaseException) -> bool:
        return isinstance(exc, policy.on) and not isinstance(exc, BudgetExceeded)

    def retryable_result(out: Any) -> bool:
        return (
            policy.error_messages
            and isinstance(out, ToolMessage)
            and out.status == "error"
            and REFUSED not in out.response_metadata
        )

    return {
        "stop": stop_after_attempt(policy.attempts) | unaffordable(),
        "retry": retry_if_exception(retryable_exc) | retry_if_result(retryable_result),
        "wait": wait_exponential(multiplier=policy.wait_initial, max=policy.wait_max),
        "retry_error_callback": lambda state: state.outcome.result(),  # the last outcome
        "reraise": True,
    }


WarningCallback = Callable[[float, str], None]


def emit(event: dict[str, Any]) -> None:
    """Send an event to the graph's ``stream_mode="custom"`` stream, when inside a graph."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except (RuntimeError, ImportError):  # not inside a graph run
        pass


def resolve_model(spec: str, budget: Any, models: dict[str, BaseChatModel] | None) -> BaseChatModel:
    """A model named by a budget (the downgrade target), its price checked now: a model
    with no price fails here, naming the field, not mid-run."""
    from agent_budget.errors import InvalidBudget
    from agent_budget.pricing import PriceBook

    model = (models or {}).get(spec)
    if model is None:
        from agent_budget.models import resolve

        try:
            model = resolve(spec, budget=budget)
        except UnknownPrice as exc:
            raise InvalidBudget(f"budget.downgrade.model: {exc}") from None
    try:
        PriceBook(budget).model_price(model_name(model) or spec)
    except UnknownPrice as exc:
        raise InvalidBudget(f"budget.downgrade.model: {exc}") from None
    return model


def with_budget_text(message: ToolMessage, text: str) -> ToolMessage:
    """A copy of a tool result with the budget message appended (same id)."""
    content = message.content
    if isinstance(content, str):
        new_content: Any = f"{content}\n\n{text}" if content else text
    else:
        new_content = [*content, {"type": "text", "text": text}]
    return message.model_copy(update={"content": new_content})


def last_tool_step(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """The ToolMessages after the last AIMessage."""
    step: list[ToolMessage] = []
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            step.append(m)
        else:
            break
    return step


def model_name(model: Any) -> str | None:
    try:
        params = model._get_ls_params()
        if params.get("ls_model_name"):
            return str(params["ls_model_name"])
    except Exception:  # not every model implements it; fall back to attributes
        pass
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _answered(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The history with tool calls that never got a result answered as "not run", since
    chat APIs reject an assistant tool call without its tool message."""
    out = list(messages)
    if out and isinstance(out[-1], AIMessage) and out[-1].tool_calls:
        for call in out[-1].tool_calls:
            out.append(
                ToolMessage(
                    content="Not run: the budget is exhausted.", tool_call_id=call["id"] or ""
                )
            )
    return out


def _without_budget(content: Any) -> str:
    text = content if isinstance(content, str) else json.dumps(content, default=str)
    return text.split("\n\n<budget>", 1)[0]


def settle_after_error(res: Any, exc: BaseException) -> bool:
    """Settle a call that raised; True if it was charged. A tool that raised was still
    called (and a paid API usually bills it); an interrupt or cancellation means the call
    did not complete and runs again on resume."""
    if _is_control_flow(exc):
        res.release()
        return False
    res.commit(replace(res.charge, meta={**res.charge.meta, "outcome": "error"}))
    return True


def _is_control_flow(exc: BaseException) -> bool:
    from langgraph.errors import GraphBubbleUp

    return (
        isinstance(exc, GraphBubbleUp | KeyboardInterrupt | SystemExit)
        or type(exc).__name__ == "CancelledError"
    )


def map_tool_messages(
    out: Any, fn: Callable[[ToolMessage], ToolMessage], call_id: str | None = None
) -> Any:
    """Apply ``fn`` to a tool result: a ToolMessage, or those a ``Command`` writes (only
    the one answering ``call_id`` when given: a handoff tool's ``Command`` carries the
    whole history to the parent graph, earlier results included). A handoff tool often
    writes its result as a dict (``{"role": "tool", ...}``); it is read as a ToolMessage."""
    if isinstance(out, ToolMessage):
        return fn(out)
    if isinstance(out, Command) and isinstance(out.update, dict):

        def one(m: Any) -> Any:
            if isinstance(m, dict) and m.get("role") == "tool" and m.get("tool_call_id"):
                if call_id is not None and m["tool_call_id"] != call_id:
                    return m
                m = convert_to_messages([m])[0]
            if isinstance(m, ToolMessage) and (call_id is None or m.tool_call_id == call_id):
                return fn(m)
            return m

        update = {
            k: [one(m) for m in v] if isinstance(v, list) else v for k, v in out.update.items()
        }
        return Command(graph=out.graph, update=update, resume=out.resume, goto=out.goto)
    return out


def _escape(out: Any, call_id: str | None = None) -> Any:
    return map_tool_messages(out, _escape_message, call_id)


def _escape_message(out: ToolMessage) -> ToolMessage:
    content = out.content
    if isinstance(content, str):
        if "budget" not in content.lower():
            return out
        return out.model_copy(update={"content": escape_budget_tags(content)})
    fixed = [
        {**block, "text": escape_budget_tags(block["text"])}
        if isinstance(block, dict) and isinstance(block.get("text"), str)
        else escape_budget_tags(block)
        if isinstance(block, str)
        else block
        for block in content
    ]
    return out.model_copy(update={"content": fixed})
