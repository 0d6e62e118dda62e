"""PriceBook: budget prices > registered > LiteLLM's bundled map > fallback > UnknownPrice."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import pytest

# Before anything imports litellm: its bundled price map, never a network fetch.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from agent_budget import pricing
from agent_budget.budget import Budget
from agent_budget.errors import AgentBudgetError, UnknownPrice
from agent_budget.pricing import PriceBook, litellm_price, register_model_price

# gpt-4o-mini in LiteLLM's bundled map: $0.15 / $0.60 per million tokens.
MINI_IN = Decimal("0.15") / 1_000_000
MINI_OUT = Decimal("0.60") / 1_000_000


@pytest.fixture(autouse=True)
def _clean_registry():
    saved = dict(pricing._registered)
    yield
    pricing._registered.clear()
    pricing._registered.update(saved)


def unique(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_litellm_known_model():
    book = PriceBook(Budget())
    price = book.model_price("gpt-4o-mini")
    assert price.source == "litellm"
    assert (price.input_per_token, price.output_per_token) == (MINI_IN, MINI_OUT)
    assert book.model_cost("gpt-4o-mini", 1_000_000, 1_000_000) == Decimal("0.75")
    assert book.model_cost("gpt-4o-mini", 1000, 100) == Decimal("0.00021")
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


@pytest.mark.parametrize("name", ["openai/gpt-4o-mini", "somegateway/gpt-4o-mini"])
def test_provider_prefixed_names(name):
    price = PriceBook(Budget()).model_price(name)
    assert price.source == "litellm"
    assert (price.input_per_token, price.output_per_token) == (MINI_IN, MINI_OUT)
    assert price.model == name


def test_litellm_unknown_model_is_none():
    assert litellm_price(unique("no-such-model")) is None


def test_litellm_lookup_prints_nothing(capsys: pytest.CaptureFixture[str]):
    litellm_price(unique("unplaceable/thing"))
    assert capsys.readouterr().out == ""


def test_budget_price_wins_over_litellm_and_registered():
    register_model_price("gpt-4o-mini", input=9, output=9)
    book = PriceBook(Budget(model_prices={"gpt-4o-mini": {"input": 1, "output": 2}}))
    price = book.model_price("gpt-4o-mini")
    assert price.source == "budget"
    assert price.input_per_token == Decimal("0.000001")
    assert price.output_per_token == Decimal("0.000002")
    assert book.model_cost("gpt-4o-mini", 3, 5) == Decimal("0.000013")


def test_registered_price_wins_over_litellm():
    register_model_price("gpt-4o-mini", input="0.5", output="1.5")
    price = PriceBook(Budget()).model_price("gpt-4o-mini")
    assert price.source == "registered"
    assert price.output_per_token == Decimal("0.0000015")


def test_registered_price_for_a_local_model():
    name = unique("local")
    register_model_price(name, input=0, output=0)
    price = PriceBook(Budget()).model_price(name)
    assert price.source == "registered"
    assert price.cost(1000, 1000) == 0
    assert pricing.registered_model_price(name) is not None


def test_register_rejects_bad_prices():
    with pytest.raises(ValueError):
        register_model_price(unique(), input=-1, output=0)
    with pytest.raises(ValueError):
        register_model_price(unique(), input="5 EUR", output=0)


def test_fallback_for_unknown_model():
    book = PriceBook(Budget(price_fallback={"input": 10, "output": 30}))
    name = unique("mystery")
    price = book.model_price(name)
    assert price.source == "fallback"
    assert price.cost(100_000, 10_000) == Decimal("1.3")
    # a known model still gets its real price, not the fallback
    assert book.model_price("gpt-4o-mini").source == "litellm"


def test_unknown_model_raises_unknown_price_saying_how_to_fix():
    name = unique("mystery")
    with pytest.raises(UnknownPrice) as info:
        PriceBook(Budget()).model_price(name)
    err = info.value
    assert isinstance(err, AgentBudgetError) and isinstance(err, LookupError)
    assert err.name == name and err.kind == "model"
    msg = str(err)
    assert name in msg and "never assumes $0" in msg
    assert "model_prices" in msg and "price_fallback" in msg


def test_model_without_a_name():
    with pytest.raises(UnknownPrice, match="reports no model name"):
        PriceBook(Budget()).model_price(None)
    book = PriceBook(Budget(price_fallback={"input": 1, "output": 1}))
    assert book.model_price(None).source == "fallback"
    assert book.model_price("").source == "fallback"


def test_resolved_prices_are_cached_per_model():
    book = PriceBook(Budget(price_fallback={"input": 1, "output": 1}))
    name = unique()
    assert book.model_price(name) is book.model_price(name)


def test_tool_prices():
    book = PriceBook(Budget(prices={"web_search": "0.001"}))
    assert book.tool_price("web_search") == Decimal("0.001")
    assert book.tool_price("calculator") == 0  # default_tool_price
    book = PriceBook(Budget(prices={"web_search": "0.001"}, default_tool_price="0.002"))
    assert book.tool_price("calculator") == Decimal("0.002")


def test_unknown_tool_with_no_default_price():
    book = PriceBook(Budget(prices={"web_search": "0.001"}, default_tool_price=None))
    assert book.tool_price("web_search") == Decimal("0.001")
    with pytest.raises(UnknownPrice) as info:
        book.tool_price("calculator")
    assert info.value.kind == "tool"
    msg = str(info.value)
    assert "tool 'calculator'" in msg and "prices=" in msg and "USD per call" in msg
