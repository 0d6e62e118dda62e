"""`BudgetMiddleware`: the same budget for `langchain.agents.create_agent` agents.

- ``before_agent`` starts the run's tracker (continuing the thread's spend from state when
  the budget's scope is ``thread``);
- ``wrap_model_call`` reserves each model call's worst case, shows the model its budget
  after tool results (at call time: no extra state write), and, when the budget is spent,
  ends the way ``on_exhausted`` says: one final call without tools, `BudgetExceeded`, or
  ``interrupt()``;
- ``wrap_tool_call`` reserves each tool call and refuses (with a ToolMessage saying which
  budget is spent) the ones that do not fit, so parallel calls are capped exactly.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, NotRequired, cast

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.types import Command, interrupt
from tenacity import AsyncRetrying, Retrying

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._run import (
    BudgetRun,
    Retry,
    WarningCallback,
    last_tool_step,
    model_name,
    resolve_model,
    retry_kwargs,
    with_budget_text,
)
from agent_budget.integrations.callbacks import (
    CHARGED_BY,
    TokenCounter,
    actual_charge,
    estimate_prompt_tokens,
)
from agent_budget.integrations.langgraph import SPEND_KEY, _latest
from agent_budget.tracker import BudgetTracker

_MAX_LIVE_RUNS = 1024


class BudgetState(AgentState[Any]):
    """Agent state plus the spend snapshot (private: not part of input or output)."""

    agent_budget: NotRequired[Annotated[dict[str, Any] | None, PrivateStateAttr, _latest]]


class BudgetMiddleware(AgentMiddleware[BudgetState, Any]):
    """Put a `Budget` on a `create_agent` agent: ``middleware=[BudgetMiddleware(budget)]``."""

    state_schema = BudgetState

    def __init__(
        self,
        budget: Budget | dict[str, Any] | str,
        *,
        tool_retry: Retry | None = None,
        model_retry: Retry | None = None,
        token_counter: TokenCounter | None = None,
        show_budget: bool = True,
        on_warning: WarningCallback | None = None,
        models: dict[str, BaseChatModel] | None = None,
    ) -> None:
        """``on_warning(threshold, text)`` is called once per ``warn_at`` crossed (the
        graph's custom stream gets the same event). ``models`` names chat models by the
        strings the budget uses (``downgrade.model``); others go through
        `agent_budget.models.resolve`."""
        super().__init__()
        self.budget = Budget.load(budget)
        self.on_warning = on_warning
        self.cheaper = (
            resolve_model(self.budget.downgrade.model, self.budget, models)
            if self.budget.downgrade
            else None
        )
        self.tool_retry = tool_retry
        self.model_retry = model_retry
        self.count_tokens = token_counter or estimate_prompt_tokens
        self.show_budget = show_budget
        self._runs: OrderedDict[str, BudgetRun] = OrderedDict()
        self._lock = threading.Lock()

    # --- the run ------------------------------------------------------------------------

    def before_agent(self, state: BudgetState, runtime: Any) -> dict[str, Any] | None:
        run = self._new_run(_saved(state), fresh=self.budget.scope == "run")
        return {SPEND_KEY: self._snapshot(run)}

    async def abefore_agent(self, state: BudgetState, runtime: Any) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)

    def after_agent(self, state: BudgetState, runtime: Any) -> dict[str, Any] | None:
        with self._lock:
            self._runs.pop((_saved(state) or {}).get("run", ""), None)
        return None

    async def aafter_agent(self, state: BudgetState, runtime: Any) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)

    def tracker(self, state: BudgetState) -> BudgetTracker:
        """The live tracker of the run this state belongs to."""
        return self._run(state).tracker

    def _new_run(self, saved: dict[str, Any] | None, fresh: bool = False) -> BudgetRun:
        from agent_budget.integrations.langgraph import current_run
        from agent_budget.ledger import attach_ledger  # light: no driver unless configured

        parent = current_run()
        if parent is not None:  # a sub-agent: spend from the calling run's budget too
            name = self.budget.name or "agent"
            tracker = parent.tracker.child(name, self.budget, reuse=True)
        else:
            tracker = BudgetTracker.restore(self.budget, saved, fresh=fresh)
            attach_ledger(tracker, _config())
        run = BudgetRun(tracker, retry=self.tool_retry, on_warning=self.on_warning)
        with self._lock:
            self._runs[run.run_id] = run
            while len(self._runs) > _MAX_LIVE_RUNS:
                self._runs.popitem(last=False)
        return run

    def _run(self, state: Any) -> BudgetRun:
        saved = _saved(state) or {}
        with self._lock:
            run = self._runs.get(saved.get("run", ""))
        if run is None:  # resumed in another process, or evicted: continue from state
            run = self._new_run(saved)
            run.run_id = saved.get("run") or uuid.uuid4().hex
            with self._lock:
                self._runs[run.run_id] = run
        return run

    @staticmethod
    def _snapshot(run: BudgetRun) -> dict[str, Any]:
        return {**run.tracker.snapshot(), "run": run.run_id}

    # --- model calls --------------------------------------------------------------------

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> Any:
        run = self._run(request.state)
        request, final = self._prepare(run, request)
        if final is not None:
            return final
        res, request = self._reserve_or_final(run, request)
        if res is None:
            return self._finish(run, self._final_call(run, request, handler))
        first = [res]

        def attempt() -> Any:
            held = first.pop() if first else run.tracker.reserve(self._worst_case(run, request))
            with _model_call(run, held):
                response = handler(request)
            return self._commit(run, held, response)

        if self.model_retry is None or self.model_retry.attempts <= 1:
            return self._finish(run, attempt())
        retrying = Retrying(**self._model_retry_kwargs(run, request))
        return self._finish(run, retrying(attempt))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> Any:
        run = self._run(request.state)
        request, final = self._prepare(run, request)
        if final is not None:
            return final
        res, request = self._reserve_or_final(run, request)
        if res is None:
            return self._finish(run, await self._afinal_call(run, request, handler))
        first = [res]

        async def attempt() -> Any:
            held = first.pop() if first else run.tracker.reserve(self._worst_case(run, request))
            with _model_call(run, held):
                response = await handler(request)
            return self._commit(run, held, response)

        if self.model_retry is None or self.model_retry.attempts <= 1:
            return self._finish(run, await attempt())
        retrying = AsyncRetrying(**self._model_retry_kwargs(run, request))
        return self._finish(run, await retrying(attempt))

    def _model_retry_kwargs(self, run: BudgetRun, request: ModelRequest) -> dict[str, Any]:
        assert self.model_retry is not None
        return retry_kwargs(
            self.model_retry, lambda: run.tracker.fits(self._worst_case(run, request))
        )

    def _prepare(self, run: BudgetRun, request: ModelRequest) -> tuple[ModelRequest, Any]:
        """Show the budget after tool results; move to the cheaper model when the budget
        says so; decide whether the run must stop first."""
        if self.cheaper is not None and run.downgrade_to(request.model):
            request = request.override(model=self.cheaper)
        reason = run.stop_reason(request.messages)
        if reason:
            reason = self._on_exhausted(run, reason, None)
            if reason:
                run.stop = reason
        if self.show_budget and last_tool_step(request.messages):
            last = cast(ToolMessage, request.messages[-1])
            patched = with_budget_text(last, run.tracker.message())
            request = request.override(messages=[*request.messages[:-1], patched])
        return request, None

    def _on_exhausted(self, run: BudgetRun, reason: str, exc: BudgetExceeded | None) -> str | None:
        mode = run.tracker.budget.on_exhausted
        if mode == "raise":
            raise exc or run.exceeded(reason)
        if mode == "interrupt" and run.apply_resume(interrupt(run.interrupt_payload(reason))):
            run.stop = None
            return None
        return reason

    def _reserve_or_final(self, run: BudgetRun, request: ModelRequest) -> tuple[Any, ModelRequest]:
        """Reserve the call, or return (None, final request) when it must be the last."""
        if run.stop is None:
            try:
                return run.tracker.reserve(self._worst_case(run, request)), request
            except BudgetExceeded as exc:
                reason = self._on_exhausted(run, str(exc), exc)
                if reason is None:  # topped up after an interrupt
                    return run.tracker.reserve(self._worst_case(run, request)), request
                run.stop = reason
        prompt = run.final_prompt(request.messages, run.stop or "budget exhausted")
        final = request.override(tools=[], messages=cast(list[Any], prompt), tool_choice=None)
        return None, final

    def _worst_case(self, run: BudgetRun, request: ModelRequest) -> Any:
        messages: list[BaseMessage] = list(request.messages)
        if request.system_message is not None:
            messages.insert(0, request.system_message)
        params = {"tools": [_tool_schema(t) for t in request.tools]}
        max_tokens = request.model_settings.get("max_tokens") or getattr(
            request.model, "max_tokens", None
        )
        return run.tracker.model_worst_case(
            model_name(request.model),
            self.count_tokens(messages, params),
            max_tokens,
            key=uuid.uuid4().hex,
        )

    def _final_reserved(self, run: BudgetRun, request: ModelRequest) -> Any:
        """(request sized to what is left, its reservation), or the answer to give when even
        a short final answer cannot be paid for."""
        sized = run.sized_final_model(request.model, request.messages)
        unpaid = ModelResponse(result=[run.unpaid_final_answer(run.stop or "budget exhausted")])
        if sized is None:
            return unpaid
        request = request.override(model=sized)
        try:
            return request, run.tracker.reserve(self._worst_case(run, request), final=True)
        except BudgetExceeded:
            return unpaid

    def _final_call(
        self, run: BudgetRun, request: ModelRequest, handler: Callable[..., Any]
    ) -> Any:
        prepared = self._final_reserved(run, request)
        if isinstance(prepared, ModelResponse):
            return prepared
        request, res = prepared
        with _model_call(run, res):
            response = handler(request)
        return _strip_tool_calls(self._commit(run, res, response))

    async def _afinal_call(
        self, run: BudgetRun, request: ModelRequest, handler: Callable[..., Any]
    ) -> Any:
        prepared = self._final_reserved(run, request)
        if isinstance(prepared, ModelResponse):
            return prepared
        request, res = prepared
        with _model_call(run, res):
            response = await handler(request)
        return _strip_tool_calls(self._commit(run, res, response))

    @staticmethod
    def _commit(run: BudgetRun, res: Any, response: Any) -> Any:
        messages = _result_messages(response)
        ai = next((m for m in messages if isinstance(m, AIMessage)), None)
        res.commit(actual_charge(run.tracker, ai, res.charge))
        return response

    def _finish(self, run: BudgetRun, response: Any) -> ExtendedModelResponse[Any]:
        if isinstance(response, AIMessage):
            response = ModelResponse(result=[response])
        if isinstance(response, ExtendedModelResponse):
            response = response.model_response
        return ExtendedModelResponse(
            model_response=response, command=Command(update={SPEND_KEY: self._snapshot(run)})
        )

    # --- tool calls ---------------------------------------------------------------------

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        run = self._run(request.state)
        out = run.guard_tool_call(request.tool_call, lambda: handler(request))
        return self._with_spend(run, out)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        run = self._run(request.state)
        out = await run.aguard_tool_call(request.tool_call, lambda: handler(request))
        return self._with_spend(run, out)

    def _with_spend(self, run: BudgetRun, out: Any) -> Any:
        if isinstance(out, ToolMessage):
            return Command(update={"messages": [out], SPEND_KEY: self._snapshot(run)})
        return out


@contextlib.contextmanager
def _model_call(run: BudgetRun, held: Any) -> Iterator[None]:
    """Around a model call the middleware pays for itself: handlers inherited from a calling
    run skip it (`CHARGED_BY`), and a call that fails gives its reservation back (no
    response, no usage to bill)."""
    token = CHARGED_BY.set(run.tracker)
    try:
        yield
    except BaseException:
        held.release()
        raise
    finally:
        CHARGED_BY.reset(token)


def _config() -> RunnableConfig:
    try:
        return get_config()
    except RuntimeError:  # outside a graph run (a middleware hook called directly)
        return RunnableConfig()


def _saved(state: Any) -> dict[str, Any] | None:
    value = (state or {}).get(SPEND_KEY)
    return value if isinstance(value, dict) else None


def _tool_schema(tool: Any) -> Any:
    if isinstance(tool, BaseTool):
        return {"name": tool.name, "description": tool.description, "args": tool.args}
    return tool


def _result_messages(response: Any) -> list[BaseMessage]:
    if isinstance(response, AIMessage):
        return [response]
    if isinstance(response, ExtendedModelResponse):
        return list(response.model_response.result)
    return list(getattr(response, "result", []) or [])


def _strip_tool_calls(response: Any) -> Any:
    if isinstance(response, ModelResponse):
        response.result = [
            m.model_copy(update={"tool_calls": [], "invalid_tool_calls": []})
            if isinstance(m, AIMessage) and m.tool_calls
            else m
            for m in response.result
        ]
    return response
