"""Prices that match the bill, checked through real budgeted LangGraph graphs: the fake chat
model at the network edge reports the usage a provider would (cache reads and writes,
reasoning, audio, long prompts), and the USD the run is charged must equal what LiteLLM's
own cost function bills for that usage."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from decimal import Decimal
from typing import Any

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm
from fakes import Counter, ToolCallingFake, make_search
from langchain_core.messages import ToolMessage
from langchain_core.outputs import ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import create_react_agent
from litellm.types.utils import (
    CacheCreationTokenDetails,
    CompletionTokensDetailsWrapper,
    PromptTokensDetailsWrapper,
    Usage,
)
from pydantic import Field

from agent_budget import Budget, BudgetExceeded, BudgetTracker, with_budget
from agent_budget.errors import UnknownPrice
from agent_budget.tracker import Charge, Spend

VERSION = f"litellm@{importlib.metadata.version('litellm')}"


class UsageFake(ToolCallingFake):
    """A provider at the edge: answers (after ``max_tool_turns`` tool calls) and reports
    ``usage`` as its ``usage_metadata``, details included."""

    usage: dict[str, Any] = Field(default_factory=dict)
    calls: int = 0

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        result: ChatResult = super()._generate(messages, stop, run_manager, **kw)
        self.calls += 1
        result.generations[0].message.usage_metadata = dict(self.usage)  # type: ignore[attr-defined]
        return result


def metadata(
    inp: int,
    out: int,
    *,
    cache_read: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    reasoning: int = 0,
    audio_in: int = 0,
    audio_out: int = 0,
) -> dict[str, Any]:
    """A LangChain usage_metadata, as langchain-openai / -anthropic / -google report it."""
    in_details = {"cache_read": cache_read, "cache_creation": cache_write, "audio": audio_in}
    if cache_write_1h:
        in_details["ephemeral_1h_input_tokens"] = cache_write_1h
        in_details["ephemeral_5m_input_tokens"] = cache_write - cache_write_1h
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": {k: v for k, v in in_details.items() if v},
        "output_token_details": {
            k: v for k, v in {"reasoning": reasoning, "audio": audio_out}.items() if v
        },
    }


def litellm_bills(model: str, usage: dict[str, Any]) -> Decimal:
    """What LiteLLM's cost function bills for ``usage`` (built here from the metadata, on
    its own, not with agent-budget's helper)."""
    i, o = usage.get("input_token_details", {}), usage.get("output_token_details", {})
    write_1h = i.get("ephemeral_1h_input_tokens", 0)
    block = Usage(
        prompt_tokens=usage["input_tokens"],
        completion_tokens=usage["output_tokens"],
        total_tokens=usage["total_tokens"],
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=i.get("cache_read"),
            cache_creation_tokens=i.get("cache_creation"),
            audio_tokens=i.get("audio"),
            cache_creation_token_details=CacheCreationTokenDetails(
                ephemeral_5m_input_tokens=i.get("ephemeral_5m_input_tokens"),
                ephemeral_1h_input_tokens=write_1h,
            )
            if write_1h
            else None,
        ),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            reasoning_tokens=o.get("reasoning"), audio_tokens=o.get("audio")
        ),
    )
    prompt, completion = litellm.cost_per_token(model=model, usage_object=block)
    return Decimal(repr(prompt + completion))


def flat_price(model: str, usage: dict[str, Any]) -> Decimal:
    """What multiplying the map's two flat prices gives (what agent-budget used to do)."""
    info = litellm.model_cost[model]
    return (
        Decimal(repr(info.get("input_cost_per_token") or 0)) * usage["input_tokens"]
        + Decimal(repr(info.get("output_cost_per_token") or 0)) * usage["output_tokens"]
    )


def run_once(
    model_name: str, usage: dict[str, Any], budget: Budget, *, tool_turns: int = 0
) -> tuple[BudgetTracker, list[tuple[Charge, str]], UsageFake, dict[str, Any]]:
    """One run of a real budgeted ReAct graph whose model reports ``usage`` per call."""
    fake = UsageFake(model_name=model_name, usage=usage, max_tool_turns=tool_turns, max_tokens=2000)
    agent = with_budget(create_react_agent(fake, [make_search(Counter())]), budget)
    tracker = BudgetTracker(budget)
    seen: list[tuple[Charge, str]] = []
    tracker.add_listener(lambda t, c, outcome: seen.append((c, outcome)))
    out = agent.invoke(
        {"messages": [("user", "go")]},
        {"configurable": {"budget_tracker": tracker}, "recursion_limit": 50},
    )
    return tracker, seen, fake, out


# model, usage shape, usage: >= 20 models, 12 providers, every shape the issue names
TABLE: list[tuple[str, str, dict[str, Any]]] = [
    ("gpt-4o-mini", "flat", metadata(20_000, 1_000)),
    ("gpt-4.1", "flat", metadata(8_000, 500)),
    ("gpt-4o", "cache read", metadata(10_000, 1_000, cache_read=5_000)),
    ("gpt-5.4", "above tier", metadata(300_000, 2_000)),
    ("gpt-5.4", "above tier + cache read", metadata(300_000, 2_000, cache_read=100_000)),
    ("o3-mini", "reasoning", metadata(1_000, 5_000, reasoning=4_000)),
    ("azure/gpt-4o-mini", "cache read", metadata(40_000, 700, cache_read=32_000)),
    ("azure/gpt-audio", "audio", metadata(2_000, 1_000, audio_in=1_500, audio_out=800)),
    ("claude-sonnet-4-5", "cache write", metadata(12_000, 800, cache_write=10_000)),
    (
        "claude-sonnet-4-5",
        "cache read + 5m and 1h writes",
        metadata(30_000, 1_000, cache_read=10_000, cache_write=15_000, cache_write_1h=5_000),
    ),
    ("claude-haiku-4-5", "flat", metadata(5_000, 300)),
    ("claude-opus-4-5", "cache read", metadata(50_000, 2_000, cache_read=45_000)),
    (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "above tier + cache write",
        metadata(250_000, 1_000, cache_write=50_000),
    ),
    (
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "cache write",
        metadata(9_000, 400, cache_write=8_000),
    ),
    ("gemini/gemini-2.5-pro", "above tier", metadata(300_000, 2_000)),
    ("gemini/gemini-2.5-pro", "below tier", metadata(100_000, 2_000)),
    ("gemini/gemini-2.5-flash", "reasoning", metadata(5_000, 3_000, reasoning=2_500)),
    ("gemini-2.5-pro", "above tier + cache read", metadata(260_000, 1_500, cache_read=60_000)),
    ("mistral/mistral-large-latest", "flat", metadata(3_000, 700)),
    ("deepseek/deepseek-chat", "cache read", metadata(20_000, 900, cache_read=16_000)),
    ("deepseek/deepseek-reasoner", "reasoning", metadata(2_000, 6_000, reasoning=5_000)),
    ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "flat", metadata(4_000, 600)),
    ("perplexity/sonar-pro", "flat", metadata(1_500, 800)),
    ("dashscope/qwen-flash", "above tier (tiered_pricing)", metadata(300_000, 1_000)),
    ("dashscope/qwen-turbo", "reasoning (priced apart)", metadata(1_000, 5_000, reasoning=4_000)),
    ("fireworks_ai/accounts/fireworks/models/llama-v3p1-8b-instruct", "flat", metadata(7_000, 90)),
    ("cerebras/llama3.1-8b", "flat", metadata(6_000, 1_200)),
]
# (most models bill reasoning tokens as output tokens; Qwen Turbo prices them apart)
SHAPES_THE_FLAT_PRICE_GETS_WRONG = ("above tier", "cache write", "priced apart", "tiered", "audio")


def test_the_table_covers_20_models_and_every_usage_shape() -> None:
    assert len({m for m, _, _ in TABLE}) >= 20
    shapes = " ".join(s for _, s, _ in TABLE)
    for shape in ("flat", "cache read", "cache write", "above tier", "reasoning"):
        assert shape in shapes


@pytest.mark.parametrize(("model", "shape", "usage"), TABLE, ids=[f"{m}-{s}" for m, s, _ in TABLE])
def test_a_budgeted_graph_charges_what_litellm_bills(
    model: str, shape: str, usage: dict[str, Any]
) -> None:
    tracker, seen, fake, _ = run_once(model, usage, Budget(usd=100))
    expected = litellm_bills(model, usage)
    assert fake.calls == 1 and expected > 0
    assert abs(tracker.spent.usd - expected) <= expected * Decimal("1e-9"), (
        f"{model} ({shape}): charged {tracker.spent.usd}, LiteLLM bills {expected}"
    )
    (charge, outcome), *_ = [(c, o) for c, o in seen if c.kind == "model"]
    assert outcome == "ok" and charge.usd == tracker.spent.usd
    assert charge.input_tokens == usage["input_tokens"]
    assert charge.price_source == VERSION
    if any(s in shape for s in SHAPES_THE_FLAT_PRICE_GETS_WRONG) and "below" not in shape:
        # the shape matters: two flat prices times two counts would be off
        assert charge.usd != flat_price(model, usage)


def test_the_issue_cases_now_match_the_bill() -> None:
    cases = {
        ("gemini/gemini-2.5-pro", 300_000, 2_000, 0): Decimal("0.78"),
        ("claude-sonnet-4-5", 12_000, 800, 10_000): Decimal("0.0555"),
    }
    for (model, inp, out, write), bill in cases.items():
        tracker, *_ = run_once(model, metadata(inp, out, cache_write=write), Budget(usd=10))
        assert tracker.spent.usd == bill  # exactly: LiteLLM's float turned into its decimal


# --- reservations at the tier the prompt is billed at ----------------------------------


def test_a_300k_token_prompt_is_reserved_at_the_tier_price_and_refused() -> None:
    model = "gemini/gemini-2.5-pro"
    info = litellm.model_cost[model]
    # ~300k tokens by the reservation's count (one per 3 characters)
    prompt = "x" * 900_000
    fake = UsageFake(model_name=model, usage=metadata(300_000, 2_000), max_tokens=2_000)
    cap = Decimal("0.50")
    agent = with_budget(
        create_react_agent(fake, [make_search(Counter())]), Budget(usd=cap, on_exhausted="raise")
    )
    tracker = BudgetTracker(Budget(usd=cap, on_exhausted="raise"))
    seen: list[tuple[Charge, str]] = []
    tracker.add_listener(lambda t, c, outcome: seen.append((c, outcome)))
    with pytest.raises(BudgetExceeded) as info_exc:
        agent.invoke(
            {"messages": [("user", prompt)]}, {"configurable": {"budget_tracker": tracker}}
        )
    assert fake.calls == 0  # refused before the call
    assert info_exc.value.limit == "usd"
    ((refused, outcome),) = seen
    assert outcome == "refused" and refused.input_tokens > 300_000
    flat = (
        Decimal(repr(info["input_cost_per_token"])) * refused.input_tokens
        + Decimal(repr(info["output_cost_per_token"])) * 2_000
    )
    tier = Decimal(repr(info["input_cost_per_token_above_200k_tokens"])) * refused.input_tokens + (
        Decimal(repr(info["output_cost_per_token_above_200k_tokens"])) * 2_000
    )
    assert flat < cap < tier  # the flat price would have fitted
    assert refused.usd == tier
    assert abs(refused.usd - litellm_bills(model, metadata(refused.input_tokens, 2_000))) < Decimal(
        "1e-12"
    )

    # with room for the tier price the same call runs, and is charged its reported usage
    tracker = BudgetTracker(Budget(usd=1))
    agent = with_budget(create_react_agent(fake, [make_search(Counter())]), Budget(usd=1))
    agent.invoke({"messages": [("user", prompt)]}, {"configurable": {"budget_tracker": tracker}})
    assert fake.calls == 1 and tracker.spent.usd == Decimal("0.78")


def test_a_cache_write_price_is_part_of_the_worst_case() -> None:
    tracker = BudgetTracker(Budget(usd=10))
    held = tracker.model_worst_case("claude-sonnet-4-5", 10_000, 1_000)
    # every prompt token may be a cache write (1.25x input): 10k * $3.75/M + 1k * $15/M
    assert held.usd == Decimal("0.0525")
    assert held.price_source == VERSION


# --- zero-price stubs ------------------------------------------------------------------

STUB = "claude-sonnet-4-20250514"  # LiteLLM's get_model_info answers a 0/0 stub for it


def test_litellm_really_has_a_zero_stub_for_the_model() -> None:
    info = litellm.get_model_info(STUB)
    assert info["input_cost_per_token"] == 0 and info["output_cost_per_token"] == 0


def test_a_zero_stub_model_is_refused_in_strict_mode_naming_both_ways_to_price_it() -> None:
    with pytest.raises(UnknownPrice) as exc:
        run_once(STUB, metadata(50_000, 1_000), Budget(usd=1), tool_turns=1)
    msg = str(exc.value)
    assert STUB in msg and "$0" in msg and "placeholder" in msg
    assert "model_prices" in msg and "free_models" in msg  # the two ways to price it
    assert exc.value.name == STUB


def test_a_zero_stub_model_runs_unpriced_and_the_budget_message_says_so() -> None:
    tracker, seen, fake, out = run_once(
        STUB, metadata(50_000, 1_000), Budget(usd=1, strict_prices=False), tool_turns=1
    )
    assert fake.calls == 2 and tracker.spent.unpriced == {STUB: 2}
    assert tracker.spent.usd == Decimal("0.01") * 0  # no price: $0 charged, counted apart
    assert tracker.spent.input_tokens == 100_000
    shown = [m for m in out["messages"] if isinstance(m, ToolMessage)][-1].content
    assert f"Unpriced Calls: 1 ({STUB})" in shown
    assert all(c.price_source == "unpriced" for c, _ in seen if c.kind == "model")


def test_a_zero_price_is_a_price_when_the_user_says_so() -> None:
    for budget in (
        Budget(usd=1, free_models=[STUB]),
        Budget(usd=1, model_prices={STUB: {"input": 0, "output": 0}}),
    ):
        tracker, seen, _, _ = run_once(STUB, metadata(50_000, 1_000), budget)
        assert tracker.spent.usd == 0 and not tracker.spent.unpriced
    # and when user prices it, the price wins
    tracker, seen, _, _ = run_once(
        STUB,
        metadata(50_000, 1_000),
        Budget(usd=1, model_prices={STUB: {"input": 3, "output": 15}}),
    )
    assert tracker.spent.usd == Decimal("0.165")
    assert [c.price_source for c, _ in seen if c.kind == "model"] == ["budget"]


def test_a_local_model_at_zero_is_free_but_ollama_cloud_is_not() -> None:
    tracker, *_ = run_once("ollama/llama3", metadata(5_000, 500), Budget(usd=1))
    assert tracker.spent.usd == 0 and not tracker.spent.unpriced
    with pytest.raises(UnknownPrice, match="gpt-oss:120b-cloud"):
        run_once("ollama/gpt-oss:120b-cloud", metadata(5_000, 500), Budget(usd=1))


@pytest.mark.parametrize(
    ("model", "usage"),
    [
        ("claude-sonnet-4-5", metadata(12_000, 800, cache_write=10_000)),
        ("gemini/gemini-2.5-pro", metadata(300_000, 2_000)),
        ("dashscope/qwen-turbo", metadata(1_000, 5_000, reasoning=4_000)),
    ],
)
def test_budget_middleware_on_create_agent_charges_the_same(
    model: str, usage: dict[str, Any]
) -> None:
    from langchain.agents import create_agent

    from agent_budget.integrations.langchain import SPEND_KEY, BudgetMiddleware

    fake = UsageFake(model_name=model, usage=usage, max_tool_turns=0, max_tokens=2000)
    agent = create_agent(
        fake,
        [make_search(Counter())],
        middleware=[BudgetMiddleware(Budget(usd=10))],
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": f"mw-{model}"}}
    agent.invoke({"messages": [("user", "go")]}, cfg)
    spent = Spend.from_dict(agent.get_state(cfg).values[SPEND_KEY]["spent"])
    expected = litellm_bills(model, usage)
    assert fake.calls == 1
    assert abs(spent.usd - expected) <= expected * Decimal("1e-9")


class TieredServiceFake(UsageFake):
    """A provider that reports the service tier it ran the call at (OpenAI: priority)."""

    service_tier: str = "priority"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # As ChatOpenAI does: the requested tier is an invocation parameter.
        return {"model_name": self.model_name, "service_tier": self.service_tier}

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        result = super()._generate(messages, stop, run_manager, **kw)
        result.generations[0].message.response_metadata["service_tier"] = self.service_tier
        return result


def test_a_call_run_at_the_priority_service_tier_is_charged_at_its_price() -> None:
    usage = metadata(10_000, 1_000)
    fake = TieredServiceFake(
        model_name="gpt-4o-mini", usage=usage, max_tokens=2000, max_tool_turns=0
    )
    tracker = BudgetTracker(Budget(usd=1))
    agent = with_budget(create_react_agent(fake, [make_search(Counter())]), Budget(usd=1))
    agent.invoke({"messages": [("user", "go")]}, {"configurable": {"budget_tracker": tracker}})
    block = Usage(prompt_tokens=10_000, completion_tokens=1_000, total_tokens=11_000)
    bill = sum(
        litellm.cost_per_token(model="gpt-4o-mini", usage_object=block, service_tier="priority")
    )
    assert tracker.spent.usd == Decimal(repr(bill)).normalize() or abs(
        tracker.spent.usd - Decimal(repr(bill))
    ) <= Decimal("1e-12")
    assert tracker.spent.usd > litellm_bills("gpt-4o-mini", usage)  # priority costs more


def test_a_call_that_asks_for_the_priority_tier_is_reserved_at_its_price() -> None:
    prompt = "x" * 30_000  # ~10k tokens by the reservation's count
    cap = Decimal("0.0035")  # fits 10k in + 2k out at standard prices, not at priority's

    def attempt(tier: str) -> tuple[UsageFake, list[tuple[Charge, str]]]:
        fake = TieredServiceFake(
            model_name="gpt-4o-mini",
            usage=metadata(10_000, 1_000),
            max_tokens=2000,
            max_tool_turns=0,
            service_tier=tier,
        )
        budget = Budget(usd=cap, on_exhausted="raise")
        tracker = BudgetTracker(budget)
        seen: list[tuple[Charge, str]] = []
        tracker.add_listener(lambda t, c, outcome: seen.append((c, outcome)))
        agent = with_budget(create_react_agent(fake, [make_search(Counter())]), budget)
        with contextlib.suppress(BudgetExceeded):
            agent.invoke(
                {"messages": [("user", prompt)]}, {"configurable": {"budget_tracker": tracker}}
            )
        return fake, seen

    fake, seen = attempt("default")
    assert fake.calls == 1 and seen[-1][1] == "ok"
    fake, seen = attempt("priority")
    ((refused, outcome),) = seen
    assert fake.calls == 0 and outcome == "refused"
    block = Usage(
        prompt_tokens=refused.input_tokens,
        completion_tokens=2000,
        total_tokens=refused.input_tokens + 2000,
    )
    priority = sum(
        litellm.cost_per_token(model="gpt-4o-mini", usage_object=block, service_tier="priority")
    )
    standard = sum(litellm.cost_per_token(model="gpt-4o-mini", usage_object=block))
    assert standard < cap < priority
    assert abs(refused.usd - Decimal(repr(priority))) <= Decimal("1e-12")


def test_remote_model_reports_the_usage_details_litellm_returns() -> None:
    # A LiteLLM response (mock_response takes a whole one) with cache and reasoning details
    # and the service tier it ran at: the reply's usage_metadata carries them, so the
    # budget charges what LiteLLM bills.
    from agent_budget.integrations.callbacks import BudgetCallbackHandler
    from agent_budget.models import RemoteChatModel

    response = {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": "Paris."}, "index": 0}],
        "usage": {
            "prompt_tokens": 10_000,
            "completion_tokens": 1_000,
            "total_tokens": 11_000,
            "prompt_tokens_details": {"cached_tokens": 6_000},
            "completion_tokens_details": {"reasoning_tokens": 400},
        },
        "service_tier": "priority",
    }
    model = RemoteChatModel(model="gpt-4o-mini", model_kwargs={"mock_response": response})
    tracker = BudgetTracker(Budget(usd=1))
    reply = model.invoke("Capital?", config={"callbacks": [BudgetCallbackHandler(tracker)]})
    assert reply.usage_metadata["input_token_details"] == {"cache_read": 6_000}
    assert reply.usage_metadata["output_token_details"] == {"reasoning": 400}
    block = Usage(
        prompt_tokens=10_000,
        completion_tokens=1_000,
        total_tokens=11_000,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=6_000),
        completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=400),
    )
    bill = sum(
        litellm.cost_per_token(model="gpt-4o-mini", usage_object=block, service_tier="priority")
    )
    assert abs(tracker.spent.usd - Decimal(repr(bill))) <= Decimal("1e-12")
    assert Decimal(reply.response_metadata["cost_usd"]) == tracker.spent.usd


def test_a_streamed_remote_reply_keeps_the_usage_details_of_its_last_chunk() -> None:
    # LiteLLM streams usage on the last chunk (OpenAI: stream_options include_usage).
    from litellm.types.utils import ModelResponseStream

    from agent_budget.models import RemoteChatModel
    from agent_budget.models._litellm_call import Attempts

    usage = Usage(
        prompt_tokens=12_000,
        completion_tokens=800,
        total_tokens=12_800,
        prompt_tokens_details=PromptTokensDetailsWrapper(cache_creation_tokens=10_000),
    )
    model = RemoteChatModel(model="claude-sonnet-4-5")
    attempts = Attempts(model, {"messages": []})
    attempts.start()
    assert attempts.read(ModelResponseStream(choices=[], usage=usage)) == []
    last = attempts.last_chunk().message
    assert last.usage_metadata["input_token_details"] == {"cache_creation": 10_000}
    assert Decimal(last.response_metadata["cost_usd"]) == Decimal("0.0555")


class RenamingFake(UsageFake):
    """A provider that reports a dated model name (a $0 stub in LiteLLM's map) for the
    model it was asked for."""

    reported: str = STUB

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        result = super()._generate(messages, stop, run_manager, **kw)
        result.generations[0].message.response_metadata["model_name"] = self.reported
        return result


@pytest.mark.parametrize("strict", [True, False])
def test_a_reported_stub_name_does_not_hide_the_requested_models_price(strict: bool) -> None:
    budget = Budget(
        usd=1, strict_prices=strict, model_prices={"my-claude": {"input": 3, "output": 15}}
    )
    fake = RenamingFake(model_name="my-claude", usage=metadata(50_000, 1_000), max_tool_turns=0)
    tracker = BudgetTracker(budget)
    agent = with_budget(create_react_agent(fake, [make_search(Counter())]), budget)
    agent.invoke({"messages": [("user", "go")]}, {"configurable": {"budget_tracker": tracker}})
    assert tracker.spent.usd == Decimal("0.165") and not tracker.spent.unpriced
