"""BudgetCallbackHandler on real langchain-core chat model calls (fake model at the edge)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, ToolCallingFake
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded, UnknownPrice
from agent_budget.integrations.callbacks import (
    FINAL_CALL_METADATA,
    BudgetCallbackHandler,
    estimate_prompt_tokens,
)
from agent_budget.tracker import BudgetTracker, Spend

# 100 input tokens at $1/M + 20 output tokens at $2/M
ONE_CALL = Decimal("0.000140")


class Probe(ToolCallingFake):
    """Records what the tracker held while the request was "in flight"."""

    tracker: Any = None
    held_during: list[Spend] = Field(default_factory=list)
    usage: bool = True
    reported_name: str | None = None
    fail: bool = False

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        if self.tracker is not None:
            self.held_during.append(self.tracker.held.copy())
        if self.fail:
            raise ConnectionError("provider down")
        result = super()._generate(messages, stop, run_manager, **kwargs)
        msg = result.generations[0].message
        if not self.usage:
            msg = AIMessage(content=msg.content, response_metadata=msg.response_metadata)
        if self.reported_name is not None:
            msg = AIMessage(
                content=msg.content,
                usage_metadata=msg.usage_metadata,
                response_metadata={"model_name": self.reported_name},
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])


def setup(**limits: Any) -> tuple[BudgetTracker, BudgetCallbackHandler, list[str]]:
    limits.setdefault("model_prices", {FAKE_MODEL: FAKE_PRICE})
    tracker = BudgetTracker(Budget(**limits))
    outcomes: list[str] = []
    tracker.add_listener(lambda t, c, outcome: outcomes.append(outcome))
    return tracker, BudgetCallbackHandler(tracker), outcomes


def cfg(handler: BudgetCallbackHandler, **metadata: Any) -> dict[str, Any]:
    return {"callbacks": [handler], "metadata": metadata}


def test_reserves_worst_case_then_commits_usage():
    tracker, handler, outcomes = setup(usd=1)
    model = Probe(tracker=tracker)
    out = model.invoke("hello", config=cfg(handler))
    assert out.content == "final answer after 1 turns"
    # while the call ran: the prompt estimate and max_tokens (50) were held
    prompt = estimate_prompt_tokens([HumanMessage("hello")], {})
    held = model.held_during[0]
    assert (held.model_calls, held.input_tokens, held.output_tokens) == (1, prompt, 50)
    assert held.usd == Decimal(prompt) / 1_000_000 + Decimal(100) / 1_000_000
    # after: the real usage, nothing held
    s = tracker.spent
    assert (s.input_tokens, s.output_tokens, s.model_calls, s.usd) == (100, 20, 1, ONE_CALL)
    assert tracker.held.usd == 0 and tracker.held.model_calls == 0
    assert outcomes == ["ok"]


async def test_async_call():
    tracker, handler, _ = setup(usd=1)
    out = await ToolCallingFake().ainvoke("hello", config=cfg(handler))
    assert out.usage_metadata["output_tokens"] == 20
    assert tracker.spent.usd == ONE_CALL and tracker.spent.model_calls == 1
    assert tracker.held.model_calls == 0


async def test_async_refusal_is_never_sent():
    tracker, handler, outcomes = setup(model_calls=1)
    model = ToolCallingFake()
    await model.ainvoke("one", config=cfg(handler))
    with pytest.raises(BudgetExceeded):
        await model.ainvoke("two", config=cfg(handler))
    assert model.turns == 1 and tracker.held.model_calls == 0
    assert outcomes == ["ok", "refused"]


def test_stream_is_charged():
    tracker, handler, _ = setup(usd=1)
    chunks = list(ToolCallingFake().stream("hello", config=cfg(handler)))
    assert chunks
    assert tracker.spent.usd == ONE_CALL and tracker.held.model_calls == 0


def test_refused_call_is_never_sent():
    tracker, handler, outcomes = setup(model_calls=1)
    model = ToolCallingFake()
    model.invoke("one", config=cfg(handler))
    with pytest.raises(BudgetExceeded) as info:
        model.invoke("two", config=cfg(handler))
    assert info.value.limit == "model_calls"
    assert model.turns == 1
    assert tracker.spent.model_calls == 1 and tracker.held.model_calls == 0
    assert outcomes == ["ok", "refused"]


def test_worst_case_output_is_refused_before_the_call():
    # the model declares max_tokens=50; only 40 output tokens are left
    _, handler, _ = setup(tokens={"output": 40})
    model = ToolCallingFake()
    with pytest.raises(BudgetExceeded) as info:
        model.invoke("hello", config=cfg(handler))
    assert info.value.limit == "tokens.output"
    assert model.turns == 0
    # without a declared max_tokens the budget's default_max_output_tokens is the worst case
    _, handler, _ = setup(tokens={"output": 1000}, default_max_output_tokens=1001)
    model = ToolCallingFake(max_tokens=None)
    with pytest.raises(BudgetExceeded):
        model.invoke("hello", config=cfg(handler))
    assert model.turns == 0


def test_usd_cap_counts_the_worst_case():
    # the worst case of one call: ~6 prompt tokens at $1/M + 50 output at $2/M = $0.000106
    _, handler, _ = setup(usd="0.0001")
    model = ToolCallingFake()
    with pytest.raises(BudgetExceeded) as info:
        model.invoke("hello", config=cfg(handler))
    assert info.value.limit == "usd" and model.turns == 0


def test_no_usage_reported_charges_the_worst_case():
    tracker, handler, _ = setup(usd=1)
    model = Probe(tracker=tracker, usage=False)
    model.invoke("hello", config=cfg(handler))
    held = model.held_during[0]
    assert tracker.spent.input_tokens == held.input_tokens
    assert tracker.spent.output_tokens == 50
    assert tracker.spent.usd == held.usd


def test_failed_call_is_released():
    tracker, handler, outcomes = setup(usd=1, model_calls=1)
    model = Probe(tracker=tracker, fail=True)
    with pytest.raises(ConnectionError):
        model.invoke("hello", config=cfg(handler))
    assert tracker.spent == Spend() and tracker.held.model_calls == 0
    assert tracker.held.usd == 0
    assert outcomes == []
    # the released slot can be used
    ToolCallingFake().invoke("hello", config=cfg(handler))
    assert tracker.spent.model_calls == 1


def test_unknown_model_price_is_an_error_not_zero():
    tracker, handler, _ = setup(model_prices={})
    model = ToolCallingFake(model_name="no-such-model-anywhere-1234")
    with pytest.raises(UnknownPrice):
        model.invoke("hello", config=cfg(handler))
    assert model.turns == 0 and tracker.held.model_calls == 0


def test_reported_model_name_is_priced():
    tracker, handler, _ = setup(
        model_prices={FAKE_MODEL: FAKE_PRICE, "fake-gpt-2025": {"input": 10, "output": 20}}
    )
    Probe(reported_name="fake-gpt-2025").invoke("hello", config=cfg(handler))
    assert tracker.spent.usd == ONE_CALL * 10


def test_unpriced_reported_name_falls_back_to_the_requested_model():
    tracker, handler, _ = setup()
    Probe(reported_name="fake-gpt-unpriced-snapshot").invoke("hello", config=cfg(handler))
    assert tracker.spent.usd == ONE_CALL


def test_final_call_may_use_the_reserve_and_pass_call_limits():
    # normal calls may use $0.0002 of $0.002: one call (worst case $0.000105) fits
    tracker, handler, _ = setup(usd="0.002", reserve_usd="0.0018", model_calls=1)
    model = ToolCallingFake()
    model.invoke("one", config=cfg(handler))
    with pytest.raises(BudgetExceeded):
        model.invoke("two", config=cfg(handler))
    model.invoke("last", config=cfg(handler, **{FINAL_CALL_METADATA: True}))
    assert model.turns == 2 and tracker.spent.model_calls == 2
    assert tracker.spent.usd == ONE_CALL * 2


def test_parallel_batch_runs_exactly_what_fits():
    tracker, handler, outcomes = setup(model_calls=3)
    model = ToolCallingFake()
    results = model.batch(
        [f"q{i}" for i in range(8)],
        config={"callbacks": [handler], "max_concurrency": 8},
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(refused) == 5 and model.turns == 3
    assert tracker.spent.model_calls == 3 and tracker.held.model_calls == 0
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 5


def test_bound_tools_count_in_the_prompt_estimate():
    msgs = [HumanMessage("hi")]
    bare = estimate_prompt_tokens(msgs, {})
    with_tools = estimate_prompt_tokens(msgs, {"tools": [{"name": "search", "args": "x" * 300}]})
    assert with_tools >= bare + 100
    ai = AIMessage(content="", tool_calls=[{"name": "search", "args": {"q": "y" * 90}, "id": "1"}])
    assert estimate_prompt_tokens([*msgs, ai], {}) >= bare + 30 + 4
