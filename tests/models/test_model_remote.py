"""RemoteChatModel: LiteLLM mock responses, a real llama.cpp server, a scripted stand-in."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations.callbacks import BudgetCallbackHandler
from agent_budget.models import ModelCallFailed, RemoteChatModel, resolve
from agent_budget.tracker import BudgetTracker

# The price a cloud model might have (USD per million tokens), registered for local servers.
CLOUD_PRICE = (Decimal("0.40"), Decimal("1.60"))


def _expected(usage: Any, price: tuple[Decimal, Decimal] = CLOUD_PRICE) -> Decimal:
    return (usage["input_tokens"] * price[0] + usage["output_tokens"] * price[1]) / 1_000_000


def test_mock_response_reports_usage_cost_and_attempts() -> None:
    model = RemoteChatModel(
        model="openai/gpt-4.1-mini", max_tokens=20, model_kwargs={"mock_response": "Paris."}
    )
    reply = model.invoke("Capital of France?")
    assert reply.content == "Paris."
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] > 0
    meta = reply.response_metadata
    assert meta["model_name"] == "openai/gpt-4.1-mini"
    assert meta["n_attempts"] == 1 and meta["attempts"][0]["outcome"] == "ok"
    assert Decimal(meta["cost_usd"]) > 0
    params = model._get_ls_params()
    assert params["ls_model_name"] == "openai/gpt-4.1-mini" and params["ls_max_tokens"] == 20


def test_mock_stream_puts_usage_and_name_on_one_chunk() -> None:
    model = RemoteChatModel(model="openai/gpt-4.1-mini", model_kwargs={"mock_response": "Hi there"})
    chunks = list(model.stream("Hello"))
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert sum(1 for c in chunks if c.response_metadata.get("model_name")) == 1
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.content == "Hi there"
    assert merged.response_metadata["model_name"] == "openai/gpt-4.1-mini"


def test_mock_rate_limit_is_retried_then_fails_with_every_attempt_listed() -> None:
    model = RemoteChatModel(
        model="openai/gpt-4.1-mini",
        max_retries=2,
        retry_initial_wait=0.01,
        model_kwargs={"mock_response": "litellm.RateLimitError"},
    )
    with pytest.raises(ModelCallFailed, match="after 3 attempt") as info:
        model.invoke("Hi")
    assert [r["outcome"] for r in info.value.log] == ["rate_limited"] * 3
    assert info.value.charged_tokens[0] > 0


@pytest.mark.local_model
def test_cost_from_registered_price_equals_tokens_times_price(llama_server: str) -> None:
    model = resolve(
        "openai/smollm2", api_base=llama_server, price=CLOUD_PRICE, max_tokens=16, temperature=0
    )
    tracker = BudgetTracker(Budget(usd=1))
    reply = model.invoke("Name a fruit.", config={"callbacks": [BudgetCallbackHandler(tracker)]})
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 5 and 0 < usage["output_tokens"] <= 16
    assert Decimal(reply.response_metadata["cost_usd"]) == _expected(usage)
    assert tracker.spent.usd == _expected(usage)
    assert tracker.spent.input_tokens == usage["input_tokens"]


@pytest.mark.local_model
async def test_server_streaming_and_async(llama_server: str) -> None:
    model = resolve("openai/smollm2", api_base=llama_server, price=CLOUD_PRICE, max_tokens=12)
    merged = None
    async for chunk in model.astream("Say hi."):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None and merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] > 0
    reply = await model.ainvoke("Say hi.")
    assert Decimal(reply.response_metadata["cost_usd"]) == _expected(reply.usage_metadata)


@pytest.mark.local_model
def test_server_tool_call_round_trip(llama_server: str) -> None:
    from langchain_core.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    model = resolve("openai/smollm2", api_base=llama_server, price=CLOUD_PRICE, max_tokens=60)
    reply = model.bind_tools([add], tool_choice="add").invoke("What is 2 + 3?")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "add"


def test_rate_limited_attempts_are_retried_and_each_charged(standin: Any) -> None:
    standin.script = ["429", "429", "ok"]
    model = RemoteChatModel(
        model="openai/standin",
        api_base=standin.base,
        input_price=CLOUD_PRICE[0],
        output_price=CLOUD_PRICE[1],
        max_retries=3,
        retry_initial_wait=0.01,
        max_tokens=10,
    )
    tracker = BudgetTracker(Budget(usd=1))
    reply = model.invoke("Hi", config={"callbacks": [BudgetCallbackHandler(tracker)]})
    attempts = reply.response_metadata["attempts"]
    assert standin.requests == 3
    assert [a["outcome"] for a in attempts] == ["rate_limited", "rate_limited", "ok"]
    prompt = attempts[0]["input_tokens"]
    assert prompt > 0 and attempts[1]["input_tokens"] == prompt
    # The server reported 12 prompt + 3 output tokens for the successful attempt.
    usage = reply.usage_metadata
    assert usage == {
        "input_tokens": 2 * prompt + 12,
        "output_tokens": 3,
        "total_tokens": 2 * prompt + 15,
    }
    assert tracker.spent.usd == _expected(usage) == Decimal(reply.response_metadata["cost_usd"])


def test_failed_attempts_can_be_free(standin: Any) -> None:
    standin.script = ["429"]
    model = RemoteChatModel(
        model="openai/standin",
        api_base=standin.base,
        input_price=1,
        output_price=1,
        retry_initial_wait=0.01,
        charge_failed_attempts="none",
    )
    reply = model.invoke("Hi")
    assert reply.usage_metadata == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}


def test_timeout_is_retried(standin: Any) -> None:
    standin.script = ["hang"]
    standin.hang_seconds = 2.0
    model = RemoteChatModel(
        model="openai/standin",
        api_base=standin.base,
        input_price=1,
        output_price=1,
        timeout=0.5,
        retry_initial_wait=0.01,
    )
    reply = model.invoke("Hi")
    outcomes = [a["outcome"] for a in reply.response_metadata["attempts"]]
    assert outcomes == ["timeout", "ok"]
    assert standin.requests == 2


def test_budget_refuses_a_call_whose_worst_case_does_not_fit(standin: Any) -> None:
    model = RemoteChatModel(
        model="openai/standin",
        api_base=standin.base,
        input_price=1000,
        output_price=1000,
        max_tokens=1000,
    )
    # Worst case: ~5 prompt tokens + 1000 output tokens at $1000/M = about $1; only $0.10 left.
    tracker = BudgetTracker(Budget(usd="0.10"))
    with pytest.raises(BudgetExceeded):
        model.invoke("Hi", config={"callbacks": [BudgetCallbackHandler(tracker)]})
    assert standin.requests == 0
    assert tracker.spent.usd == 0 and tracker.held.usd == 0
