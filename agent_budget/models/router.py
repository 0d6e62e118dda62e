"""`BudgetRouter`: a chat model that sends each call to a cheap or an expensive model.

Strategies (FrugalGPT / AutoMix cascades, Hybrid LLM / RouteLLM difficulty routing):

- ``"cascade"``: ask the cheap model; escalate when the verifier's confidence is low.
- ``"score"``: route on the difficulty score alone (one call, streams directly).
- ``"hybrid"`` (default): a request scored hard goes straight to the expensive model; the
  rest cascade.

When the budget regime (given, or read from a callable such as ``lambda: tracker.regime``)
is LOW or CRITICAL, every call goes to the cheap model and nothing escalates. Every decision
is kept in `decisions`, passed to `on_decision`, and put on the reply as
``response_metadata["router"]``.

The router makes no model call of its own: ``invoke``/``stream`` run the chosen model with
the caller's config, so a budget callback sees (and charges) exactly the real calls, each at
its own model's price. (How the decision rides on a reply, whole or streamed:
`models._route_reply`.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal, cast

from langchain_core.callbacks import CallbackManager, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from agent_budget._steps import Call, Steps, adrive, ainvoke, drive, invoke
from agent_budget.models._route_reply import HoldLast, RouteDecision, Tier, tag, whole

__all__ = ["BudgetRouter", "RouteDecision", "Strategy", "Tier"]
from agent_budget.models.scoring import (
    DifficultyScorer,
    Verifier,
    default_verifier,
    heuristic_difficulty,
)
from agent_budget.pricing import register_own_price

Strategy = Literal["cascade", "score", "hybrid"]
_SAVING_REGIMES = {"LOW", "CRITICAL"}


def _model_name(model: BaseChatModel) -> str:
    params = model._get_ls_params()
    return str(params.get("ls_model_name") or getattr(model, "model_name", None) or model)


class BudgetRouter(BaseChatModel):
    """Cheap model first, expensive model when needed, cheap only when money is short."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    cheap: BaseChatModel
    expensive: BaseChatModel
    strategy: Strategy = "hybrid"
    scorer: DifficultyScorer = heuristic_difficulty
    verifier: Verifier = default_verifier
    difficulty_threshold: float = 0.6
    """Score at or above which a request goes to the expensive model (score, hybrid)."""
    confidence_threshold: float = 0.35
    """Verifier confidence below which a cheap reply is escalated (cascade, hybrid)."""
    regime: Any = None
    """A `Regime`, its name, or a callable returning one (e.g. ``lambda: tracker.regime``)."""
    on_decision: Callable[[RouteDecision], None] | None = None
    decisions: list[RouteDecision] = Field(default_factory=list)

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        # Only reached through generate(): the router's own run is then free (its children
        # are charged), see _generate.
        register_own_price(self.router_name, 0, 0)

    @property
    def router_name(self) -> str:
        return f"router:{_model_name(self.cheap)}|{_model_name(self.expensive)}"

    @property
    def _llm_type(self) -> str:
        return "agent-budget-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.router_name, "strategy": self.strategy}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider="agent-budget", ls_model_name=self.router_name, ls_model_type="chat"
        )

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools to both tiers (each formats them its own way at call time)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    # ---- decisions --------------------------------------------------------------------

    def current_regime(self) -> str | None:
        value = self.regime
        for _ in range(3):  # a callable, or a callable returning a bound method
            if not callable(value) or isinstance(value, str):
                break
            value = value()
        if value is None:
            return None
        return str(getattr(value, "value", value)).upper()

    def plan(self, messages: Sequence[BaseMessage]) -> tuple[Tier, str, float | None, str | None]:
        """(first tier, reason, difficulty, regime) for a request, before any call."""
        regime = self.current_regime()
        if regime in _SAVING_REGIMES:
            return "cheap", f"budget regime {regime}: cheap model only", None, regime
        if self.strategy == "cascade":
            return "cheap", "cascade: cheap model first", None, regime
        difficulty = float(self.scorer(messages))
        if difficulty >= self.difficulty_threshold:
            return (
                "expensive",
                f"difficulty {difficulty:.2f} >= {self.difficulty_threshold}",
                difficulty,
                regime,
            )
        return (
            "cheap",
            f"difficulty {difficulty:.2f} < {self.difficulty_threshold}",
            difficulty,
            regime,
        )

    def _should_verify(self, regime: str | None) -> bool:
        return self.strategy in ("cascade", "hybrid") and regime not in _SAVING_REGIMES

    def _record(
        self,
        tier: Tier,
        escalated: bool,
        reason: str,
        difficulty: float | None,
        confidence: float | None,
        regime: str | None,
    ) -> RouteDecision:
        model = self.cheap if tier == "cheap" else self.expensive
        decision = RouteDecision(
            _model_name(model), tier, escalated, reason, difficulty, confidence, regime, time.time()
        )
        with self._lock:
            self.decisions.append(decision)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision

    def _tier(
        self, tier: Tier, kwargs: dict[str, Any]
    ) -> tuple[Runnable[Any, Any], dict[str, Any]]:
        model = self.cheap if tier == "cheap" else self.expensive
        rest = dict(kwargs)
        tools = rest.pop("tools", None)
        tool_choice = rest.pop("tool_choice", None)
        if tools:
            return model.bind_tools(tools, tool_choice=tool_choice), rest
        return model, rest

    def _verify(self, messages: Sequence[BaseMessage], reply: BaseMessage) -> float:
        assert isinstance(reply, AIMessage)
        return float(self.verifier(messages, reply))

    @property
    def escalation_rate(self) -> float:
        """Share of recorded calls answered by the expensive model."""
        if not self.decisions:
            return 0.0
        return sum(d.tier == "expensive" for d in self.decisions) / len(self.decisions)

    # ---- calls ------------------------------------------------------------------------

    def _route(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None,
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Steps[AIMessage]:
        """The routing, free of sync or async (see `agent_budget._steps`): it yields each
        model call to make, is sent the reply, and returns the tagged answer. `invoke` and
        `ainvoke` drive it."""
        messages = self._convert_input(input).to_messages()
        child = _fresh(ensure_config(config))

        def call(tier: Tier) -> Call:
            model, rest = self._tier(tier, kwargs)
            return (model, messages, child), {"stop": stop, **rest}

        tier, reason, difficulty, regime = self.plan(messages)
        reply = yield call(tier)
        confidence = None
        if tier == "cheap" and self._should_verify(regime):
            confidence = self._verify(messages, reply)
            if confidence < self.confidence_threshold:
                why = f"confidence {confidence:.2f} < {self.confidence_threshold}"
                final = yield call("expensive")
                decision = self._record("expensive", True, why, difficulty, confidence, regime)
                return cast(AIMessage, tag(final, decision))
            reason += f"; confidence {confidence:.2f} ok"
        return cast(
            AIMessage,
            tag(reply, self._record(tier, False, reason, difficulty, confidence, regime)),
        )

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return drive(self._route(input, config, stop, kwargs), invoke)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return await adrive(self._route(input, config, stop, kwargs), ainvoke)

    def _streamed(
        self, input: LanguageModelInput, kwargs: dict[str, Any]
    ) -> tuple[list[BaseMessage], tuple[Runnable[Any, Any], dict[str, Any], HoldLast] | None]:
        """The messages, and the model to stream from with its arguments and the chunk
        tagger; None for a cascade, which must see the whole cheap reply to decide."""
        messages = self._convert_input(input).to_messages()
        tier, reason, difficulty, regime = self.plan(messages)
        if tier == "cheap" and self._should_verify(regime):
            return messages, None
        model, rest = self._tier(tier, kwargs)
        decision = self._record(tier, False, reason, difficulty, None, regime)
        return messages, (model, rest, HoldLast(decision))

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        messages, planned = self._streamed(input, kwargs)
        if planned is None:
            yield whole(self.invoke(messages, config, stop=stop, **kwargs))
            return
        model, rest, held = planned
        for chunk in model.stream(messages, _fresh(ensure_config(config)), stop=stop, **rest):
            yield from held.push(chunk)
        yield from held.end()

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        messages, planned = self._streamed(input, kwargs)
        if planned is None:
            yield whole(await self.ainvoke(messages, config, stop=stop, **kwargs))
            return
        model, rest, held = planned
        child = _fresh(ensure_config(config))
        async for chunk in model.astream(messages, child, stop=stop, **rest):
            for out in held.push(chunk):
                yield out
        for out in held.end():
            yield out

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """The generate()/batch-of-prompts path: the router's own run is reported at $0 and
        with zero tokens, since its child calls (run as child runs) carry the real charges."""
        config: RunnableConfig = {}
        if run_manager is not None:
            config["callbacks"] = CallbackManager(
                handlers=run_manager.handlers,
                inheritable_handlers=run_manager.inheritable_handlers,
                parent_run_id=run_manager.run_id,
            )
        reply = self.invoke(messages, config, stop=stop, **kwargs)
        routed = dict(reply.response_metadata.get("router", {}))
        routed["usage"] = reply.usage_metadata
        free = reply.model_copy(
            update={
                "usage_metadata": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
                "response_metadata": {
                    **reply.response_metadata,
                    "model_name": self.router_name,
                    "router": routed,
                },
            }
        )
        return ChatResult(generations=[ChatGeneration(message=free)])


def _fresh(config: RunnableConfig) -> RunnableConfig:
    """The caller's config without a run id, which only one child run may use."""
    out = dict(config)
    out.pop("run_id", None)
    return out  # type: ignore[return-value]
