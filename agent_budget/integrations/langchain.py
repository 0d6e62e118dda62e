"""`BudgetMiddleware`: the same budget for `langchain.agents.create_agent` agents, as a thin
adapter over the run core (`agent_budget.run`):

- ``before_agent`` starts the run (`_setup.start_run`, as `with_budget` does);
- ``wrap_model_call`` applies the stop policy, shows the model its budget after tool
  results (at call time: no extra state write), reserves the call's worst case, and, when
  the budget is spent, ends the way ``on_exhausted`` says: one final call without tools,
  `BudgetExceeded`, or ``interrupt()``;
- ``wrap_tool_call`` is the run core's tool guard, so parallel calls are capped exactly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
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
from langgraph.types import Command
from tenacity import AsyncRetrying, Retrying

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._discover import resolve_model
from agent_budget.integrations._messages import (
    final_prompt,
    last_tool_step,
    model_name,
    sized_final_model,
    step_results,
    tool_hooks,
    unpaid_answer,
    with_budget_text,
)
from agent_budget.integrations._model_meter import ModelMeter, TokenCounter, _schema_chars
from agent_budget.integrations._presigned import presign_hooks
from agent_budget.integrations._private import CONFIG_KEY_CHECKPOINTER
from agent_budget.integrations._setup import start_run
from agent_budget.integrations._state import SPEND_KEY, current_run, node_name, snapshot
from agent_budget.integrations.nodes import on_exhausted
from agent_budget.run import OWNER, BudgetRun, Retry, WarningCallback, retry_kwargs
from agent_budget.snapshot import BudgetSnapshot, latest
from agent_budget.spend import Charge
from agent_budget.stopping import StopReason
from agent_budget.tracker import BudgetTracker, Reservation

_MAX_LIVE_RUNS = 1024
_EXHAUSTED = StopReason("budget", "budget exhausted", "budget")


class BudgetState(AgentState[Any]):
    """Agent state plus the spend snapshot (private: not part of input or output)."""

    agent_budget: NotRequired[Annotated[BudgetSnapshot | None, PrivateStateAttr, latest]]


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
        self.token_counter = token_counter
        self.show_budget = show_budget
        self._runs: OrderedDict[str, BudgetRun] = OrderedDict()
        self._meters: dict[str, ModelMeter] = {}
        self._schemas: dict[int, tuple[Any, int]] = {}
        self._lock = threading.Lock()
        presign_hooks(self)

    # --- the run ------------------------------------------------------------------------

    # No ``after_agent``: every hook is a graph node, and every node costs LangGraph
    # bookkeeping on every step of the run, run or not (measured: ~1.5% of a bare step).
    # Live runs are kept in a bounded table instead of being dropped at the end.

    def before_agent(self, state: BudgetState, runtime: Any) -> dict[str, Any] | None:
        run = self._start(_saved(state), resuming=False)
        return {SPEND_KEY: snapshot(run)}

    async def abefore_agent(self, state: BudgetState, runtime: Any) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)

    def tracker(self, state: BudgetState) -> BudgetTracker:
        """The live tracker of the run this state belongs to."""
        return self._run(state).tracker

    def _start(self, saved: BudgetSnapshot | None, *, resuming: bool) -> BudgetRun:
        config = _config()
        run, _ = start_run(
            self.budget,
            {**config, "configurable": {**(config.get("configurable") or {}), "budget": None}},
            saved=saved,
            resuming=resuming,
            parent=current_run(),
            name="agent",
            retry=self.tool_retry,
            on_warning=self.on_warning,
        )
        # Spend is written to state only when a checkpointer keeps it.
        run.persist = (config.get("configurable") or {}).get(CONFIG_KEY_CHECKPOINTER) is not None
        with self._lock:
            self._runs[run.run_id] = run
            while len(self._runs) > _MAX_LIVE_RUNS:
                old, _ = self._runs.popitem(last=False)
                self._meters.pop(old, None)
        return run

    def _run(self, state: Any) -> BudgetRun:
        saved = _saved(state)
        with self._lock:
            run = self._runs.get(saved.get("run", "") if saved else "")
        if run is None:  # resumed in another process, or evicted: continue from state
            run = self._start(saved, resuming=True)
        return run

    def _spend_update(self, run: BudgetRun) -> dict[str, Any]:
        return {SPEND_KEY: snapshot(run)} if run.persist else {}

    # --- model calls --------------------------------------------------------------------

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> Any:
        run = self._run(request.state)
        request, held = self._prepare(run, request)
        if held is None:  # the run must stop: a final call without tools
            prepared = self._final(run, request)
            if isinstance(prepared, ModelResponse):
                return self._finish(run, prepared)
            request, held = prepared
            with _paying(run, held):
                return self._finish(run, _stripped(self._commit(run, held, handler(request))))
        first = [held]

        def attempt() -> Any:
            res = first.pop() if first else run.tracker.reserve(self._worst_case(run, request))
            with _paying(run, res):
                return self._commit(run, res, handler(request))

        if self.model_retry is None or self.model_retry.attempts <= 1:
            return self._finish(run, attempt())
        return self._finish(run, Retrying(**self._model_retry_kwargs(run, request))(attempt))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> Any:
        run = self._run(request.state)
        request, held = self._prepare(run, request)
        if held is None:
            prepared = self._final(run, request)
            if isinstance(prepared, ModelResponse):
                return self._finish(run, prepared)
            request, held = prepared
            with _paying(run, held):
                response = await handler(request)
            return self._finish(run, _stripped(self._commit(run, held, response)))
        first = [held]

        async def attempt() -> Any:
            res = first.pop() if first else run.tracker.reserve(self._worst_case(run, request))
            with _paying(run, res):
                response = await handler(request)
            return self._commit(run, res, response)

        if self.model_retry is None or self.model_retry.attempts <= 1:
            return self._finish(run, await attempt())
        retrying = AsyncRetrying(**self._model_retry_kwargs(run, request))
        return self._finish(run, await retrying(attempt))

    def _model_retry_kwargs(self, run: BudgetRun, request: ModelRequest) -> dict[str, Any]:
        assert self.model_retry is not None
        t = run.tracker
        return retry_kwargs(
            self.model_retry, lambda: t.fits(self._worst_case(run, request)), lambda out: False
        )

    def _prepare(
        self, run: BudgetRun, request: ModelRequest
    ) -> tuple[ModelRequest, Reservation | None]:
        """Move to the cheaper model when the budget says so; apply the stop policy; show
        the budget after tool results; reserve the call. No reservation: finalize."""
        if self.cheaper is not None and run.downgrade_now(model_name(request.model)):
            request = request.override(model=self.cheaper)
        if run.stop is None:
            reason = run.stop_reason(step_results(request.messages))
            if reason is not None and not on_exhausted(run, reason, None):
                run.stop = reason
        while run.stop is None:
            shown = self._shown(run, request)
            try:
                return shown, run.tracker.reserve(self._worst_case(run, shown))
            except BudgetExceeded as exc:
                reason = StopReason(exc.limit, str(exc), "budget")
                if not on_exhausted(run, reason, exc):
                    run.stop = reason  # else topped up: shown again with the new figures
        prompt = final_prompt(run.tracker, request.messages, run.stop or _EXHAUSTED)
        final = request.override(tools=[], messages=cast(list[Any], prompt), tool_choice=None)
        return final, None

    def _shown(self, run: BudgetRun, request: ModelRequest) -> ModelRequest:
        """The request with the budget as it is now after the last tool result (shown at
        call time: the stored history keeps the tools' own output)."""
        if not self.show_budget or not last_tool_step(request.messages):
            return request
        last = cast(ToolMessage, request.messages[-1])
        patched = with_budget_text(last, run.tracker.message())
        return request.override(messages=[*request.messages[:-1], patched])

    def _meter(self, run: BudgetRun) -> ModelMeter:
        with self._lock:
            meter = self._meters.get(run.run_id)
            if meter is None:
                meter = self._meters[run.run_id] = ModelMeter(self.token_counter)
        return meter

    def _worst_case(self, run: BudgetRun, request: ModelRequest) -> Charge:
        messages: list[BaseMessage] = list(request.messages)
        if request.system_message is not None:
            messages.insert(0, request.system_message)
        max_tokens = request.model_settings.get("max_tokens") or getattr(
            request.model, "max_tokens", None
        )
        if self.token_counter is not None:
            params: dict[str, Any] = {"tools": [_tool_schema(t) for t in request.tools]}
            chars = None
        else:  # each tool's schema measured once: tools live as long as the agent
            params, chars = {}, self._tools_chars(request.tools)
        return self._meter(run).worst_case(
            run.tracker,
            model_name(request.model),
            messages,
            max_tokens,
            params=params,
            tools_chars=chars,
            node=node_name(),
        )

    def _tools_chars(self, tools: list[Any]) -> int:
        # Each tool's schema is serialised once: tools live as long as the agent.
        total = 0
        for tool in tools:
            hit = self._schemas.get(id(tool))
            if hit is None or hit[0] is not tool:
                hit = self._schemas[id(tool)] = (tool, _schema_chars([_tool_schema(tool)]))
            total += hit[1]
        return total

    def _final(
        self, run: BudgetRun, request: ModelRequest
    ) -> ModelResponse | tuple[ModelRequest, Reservation]:
        """The final request sized to what is left and its reservation, or the answer to
        give when even a short final answer cannot be paid for."""
        unpaid = ModelResponse(result=[unpaid_answer(run.tracker, run.stop or _EXHAUSTED)])
        sized = sized_final_model(run.tracker, request.model, request.messages)
        if sized is None:
            return unpaid
        request = request.override(model=sized)
        try:
            return request, run.tracker.reserve(self._worst_case(run, request), final=True)
        except BudgetExceeded:
            return unpaid

    @staticmethod
    def _commit(run: BudgetRun, res: Reservation, response: Any) -> Any:
        messages = _result_messages(response)
        ai = next((m for m in messages if isinstance(m, AIMessage)), None)
        ModelMeter.settle(run.tracker, res, ai)
        return response

    def _finish(self, run: BudgetRun, response: Any) -> Any:
        if isinstance(response, AIMessage):
            response = ModelResponse(result=[response])
        if isinstance(response, ExtendedModelResponse):
            response = response.model_response
        update = self._spend_update(run)
        if not update:
            return response
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    # --- tool calls ---------------------------------------------------------------------

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        run = self._run(request.state)
        hooks = tool_hooks(run, annotate=False, node=node_name, note_results=False)
        out = run.guard_tool_call(request.tool_call, lambda: handler(request), hooks)
        return self._with_spend(run, out)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        run = self._run(request.state)
        hooks = tool_hooks(run, annotate=False, node=node_name, note_results=False)
        out = await run.aguard_tool_call(request.tool_call, lambda: handler(request), hooks)
        return self._with_spend(run, out)

    def _with_spend(self, run: BudgetRun, out: Any) -> Any:
        if isinstance(out, ToolMessage) and run.persist:
            return Command(update={"messages": [out], **self._spend_update(run)})
        return out


@contextmanager
def _paying(run: BudgetRun, held: Reservation) -> Iterator[None]:
    """Around a model call the middleware pays for itself: it is the run's own (`OWNER`),
    so a handler of a budget above this one skips it, and a call that fails gives its
    reservation back (no response, no usage to bill)."""
    token = OWNER.set(run)
    try:
        yield
    except BaseException:
        held.release()
        raise
    finally:
        OWNER.reset(token)


def _config() -> RunnableConfig:
    try:
        return get_config()
    except RuntimeError:  # outside a graph run (a middleware hook called directly)
        return RunnableConfig()


def _saved(state: Any) -> BudgetSnapshot | None:
    value = (state or {}).get(SPEND_KEY)
    return value if isinstance(value, dict) else None  # type: ignore[return-value]


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


def _stripped(response: Any) -> Any:
    """The final answer without tool calls, except those answered in the response itself:
    `create_agent` with ``response_format=ToolStrategy(...)`` returns the structured-output
    call together with its ToolMessage, and a ToolMessage whose call was stripped from the
    AIMessage before it is a history chat APIs reject."""
    if isinstance(response, ModelResponse):
        answered = {m.tool_call_id for m in response.result if isinstance(m, ToolMessage)}
        response.result = [
            m.model_copy(
                update={
                    "tool_calls": [c for c in m.tool_calls if c.get("id") in answered],
                    "invalid_tool_calls": [],
                }
            )
            if isinstance(m, AIMessage) and m.tool_calls
            else m
            for m in response.result
        ]
    return response
