"""The reservation covers the bill: for any usage a call with this prompt and output cap can
report (cache reads, 5-minute cache writes, reasoning tokens, in any mix), the cost charged
is at most the worst case reserved before the call, at every tier, for prices written in
the budget and for LiteLLM's. (Audio and one-hour cache writes are outside: see README.)"""

from __future__ import annotations

import os
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from agent_budget import Budget
from agent_budget.prices.schema import ModelPrice
from agent_budget.pricing import PriceBook, TokenUsage

money = st.decimals(min_value=0, max_value=100, places=3)


@st.composite
def prices(draw: st.DrawFn) -> ModelPrice:
    optional = {k: draw(st.none() | money) for k in ("cached_input", "cache_write", "reasoning")}
    thresholds = sorted(draw(st.sets(st.integers(1, 400_000), max_size=3)))
    tiers = [
        {"above": t, "input": draw(money), "output": draw(st.none() | money)} for t in thresholds
    ]
    return ModelPrice(input=draw(money), output=draw(money), tiers=tiers, **optional)


@st.composite
def calls(draw: st.DrawFn) -> tuple[TokenUsage, int]:
    prompt = draw(st.integers(0, 600_000))
    cap = draw(st.integers(0, 20_000))
    read = draw(st.integers(0, prompt))
    write = draw(st.integers(0, prompt - read))
    out = draw(st.integers(0, cap))
    reasoning = draw(st.integers(0, out))
    return TokenUsage(prompt, out, cache_read=read, cache_write=write, reasoning=reasoning), cap


@given(prices(), calls())
@settings(max_examples=200, deadline=None)
def test_a_budget_price_never_bills_more_than_the_worst_case(
    price: ModelPrice, call: tuple[TokenUsage, int]
) -> None:
    usage, cap = call
    cost = price.cost(usage)
    assert Decimal(0) <= cost <= price.worst_case(usage.input_tokens, cap)


MODELS = [
    "claude-sonnet-4-5",  # cache writes at 1.25x input
    "gemini/gemini-2.5-pro",  # tier above 200k
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",  # tier + cache writes
    "dashscope/qwen-turbo",  # reasoning dearer than output
    "dashscope/qwen-flash",  # tiered_pricing table
    "gpt-5.4",  # tier above 272k
]
BOOK = PriceBook(Budget())


@given(st.sampled_from(MODELS), calls())
@settings(max_examples=40, deadline=None)
def test_litellm_never_bills_more_than_the_worst_case(
    model: str, call: tuple[TokenUsage, int]
) -> None:
    usage, cap = call
    price = BOOK.model_price(model)
    assert price.cost_of(usage) <= price.worst_case(usage.input_tokens, cap)
