"""BudgetRouter with scripted chat models: routing rules, records, and what the budget sees."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent_budget.budget import Budget
from agent_budget.integrations.callbacks import BudgetCallbackHandler
from agent_budget.models import BudgetRouter, heuristic_difficulty
from agent_budget.models.scoring import default_verifier
from agent_budget.pricing import register_model_price
from agent_budget.tracker import BudgetTracker, Regime


class Scripted(BaseChatModel):
    """Answers `reply` with a fixed confidence and usage; counts its calls."""

    name_: str
    reply: str = "42"
    confidence: float = 0.9
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider="test", ls_model_name=self.name_, ls_max_tokens=10)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls += 1
        msg = AIMessage(
            self.reply,
            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
            response_metadata={"model_name": self.name_, "confidence": self.confidence},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


register_model_price("test/cheap", input=0, output=0)
register_model_price("test/expensive", input=10, output=30)
EASY = "What is 2 plus 2?"
HARD = (
    "Prove step by step that the algorithm is optimal, analyze its trade-offs, compare it "
    "with two alternatives, and derive the complexity of 17 * 23 + 5 operations. Why?"
)


def router(cheap_conf: float = 0.9, **kwargs: Any) -> BudgetRouter:
    return BudgetRouter(
        cheap=Scripted(name_="test/cheap", confidence=cheap_conf),
        expensive=Scripted(name_="test/expensive", reply="the expensive answer"),
        **kwargs,
    )


def test_difficulty_heuristic_orders_easy_below_hard() -> None:
    easy = heuristic_difficulty([HumanMessage(EASY)])
    hard = heuristic_difficulty([HumanMessage(HARD)])
    assert 0 <= easy < 0.6 <= hard <= 1


def test_confident_cheap_answer_is_kept() -> None:
    r = router()
    reply = r.invoke(EASY)
    assert reply.content == "42"
    d = r.decisions[-1]
    assert d.tier == "cheap" and not d.escalated and d.confidence == pytest.approx(0.9)
    assert reply.response_metadata["router"]["tier"] == "cheap"
    assert r.expensive.calls == 0  # type: ignore[attr-defined]


def test_low_confidence_escalates_with_the_reason_recorded() -> None:
    seen: list[Any] = []
    r = router(cheap_conf=0.1, on_decision=seen.append)
    reply = r.invoke(EASY)
    assert reply.content == "the expensive answer"
    d = r.decisions[-1]
    assert d.escalated and d.tier == "expensive" and "confidence 0.10 < 0.35" in d.reason
    assert seen == [d]
    assert r.cheap.calls == 1 and r.expensive.calls == 1  # type: ignore[attr-defined]


def test_hard_request_goes_straight_to_the_expensive_model() -> None:
    r = router()
    r.invoke(HARD)
    d = r.decisions[-1]
    assert d.tier == "expensive" and not d.escalated and "difficulty" in d.reason
    assert r.cheap.calls == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("regime", [Regime.LOW, "CRITICAL", lambda: Regime.LOW])
def test_low_budget_regime_always_uses_the_cheap_model(regime: Any) -> None:
    r = router(cheap_conf=0.0, regime=regime)
    r.invoke(HARD)
    d = r.decisions[-1]
    assert d.tier == "cheap" and not d.escalated and "regime" in d.reason
    assert r.expensive.calls == 0  # type: ignore[attr-defined]


def test_regime_read_from_a_live_tracker() -> None:
    tracker = BudgetTracker(Budget(usd=1))
    r = router(regime=lambda: tracker.regime)
    r.invoke(HARD)
    assert r.decisions[-1].tier == "expensive" and r.decisions[-1].regime == "HIGH"


def test_pluggable_scorer_and_verifier() -> None:
    r = router(strategy="score", scorer=lambda msgs: 1.0)
    r.invoke(EASY)
    assert r.decisions[-1].tier == "expensive"
    r2 = router(strategy="cascade", verifier=lambda msgs, reply: 0.0)
    r2.invoke(HARD)  # cascade ignores difficulty; the verifier rejects the cheap reply
    assert r2.decisions[-1].escalated


def test_budget_charges_exactly_the_real_calls_at_their_own_prices() -> None:
    tracker = BudgetTracker(Budget(usd=1))
    cb = {"callbacks": [BudgetCallbackHandler(tracker)]}
    r = router(cheap_conf=0.1)
    r.invoke(EASY, cb)  # cheap (free) + escalation (priced)
    assert tracker.spent.model_calls == 2
    assert tracker.spent.usd == (Decimal(10) * 10 + Decimal(5) * 30) / 1_000_000
    assert tracker.spent.input_tokens == 20 and tracker.held.usd == 0
    r.generate([[HumanMessage(EASY)]], callbacks=cb["callbacks"])  # generate(): router run is free
    assert tracker.spent.model_calls == 5
    assert tracker.spent.usd == 2 * (Decimal(10) * 10 + Decimal(5) * 30) / 1_000_000


def test_stream_and_async_follow_the_same_rules() -> None:
    r = router(cheap_conf=0.1)
    chunks = list(r.stream(EASY))
    assert "".join(str(c.content) for c in chunks) == "the expensive answer"
    assert r.decisions[-1].escalated
    direct = list(r.stream(HARD))
    assert "".join(str(c.content) for c in direct) == "the expensive answer"
    assert direct[-1].response_metadata["router"]["tier"] == "expensive"


async def test_async_paths() -> None:
    r = router(cheap_conf=0.1)
    reply = await r.ainvoke(EASY)
    assert reply.content == "the expensive answer"
    parts = [c async for c in r.astream(HARD)]
    assert parts and r.decisions[-1].tier == "expensive"
    assert r.escalation_rate == 1.0


def test_default_verifier_signals() -> None:
    ok = AIMessage("Paris is the capital of France.", response_metadata={"confidence": 0.8})
    assert default_verifier([], ok) == pytest.approx(0.8)
    assert default_verifier([], AIMessage("")) == 0
    hedge = AIMessage("I don't know, sorry.", response_metadata={"confidence": 0.8})
    assert default_verifier([], hedge) < 0.3
    cut = AIMessage("Paris is", response_metadata={"confidence": 0.8, "finish_reason": "length"})
    assert default_verifier([], cut) < 0.8
    loop = AIMessage("the cat sat " * 20, response_metadata={"confidence": 0.9})
    assert default_verifier([], loop) < 0.3


@pytest.mark.local_model
def test_router_over_the_local_model_in_a_react_agent(local_model: Any) -> None:
    import warnings

    from langchain_core.messages import ToolMessage
    from langchain_core.tools import tool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"Rainy, 12C in {city}."

    r = BudgetRouter(cheap=local_model, expensive=local_model, regime="LOW")
    agent = create_react_agent(r, [get_weather])
    out = agent.invoke({"messages": [("user", "Weather in Berlin?")]}, {"recursion_limit": 12})
    assert any(isinstance(m, ToolMessage) for m in out["messages"])
    assert all(d.tier == "cheap" for d in r.decisions) and len(r.decisions) >= 2
