"""LocalChatModel with the real shipped SmolLM2-135M GGUF (marker local_model, runs in CI)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from agent_budget.budget import Budget
from agent_budget.integrations.callbacks import BudgetCallbackHandler
from agent_budget.models import ContextOverflow, LocalChatModel
from agent_budget.models._loader import PREFIX_BLOCK
from agent_budget.tracker import BudgetTracker

pytestmark = pytest.mark.local_model


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21C in {city}."


class City(BaseModel):
    name: str
    country: str
    population: int


def test_chat_reports_usage_and_model_name(local_model: LocalChatModel) -> None:
    reply = local_model.invoke("What is the capital of France?")
    assert isinstance(reply, AIMessage) and reply.content
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 5
    assert 0 < usage["output_tokens"] <= 48
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    meta = reply.response_metadata
    assert meta["model_name"] == "local:smollm2-135m"
    assert meta["compute_seconds"] > 0
    assert 0 < meta["confidence"] <= 1


def test_ls_params_carry_the_canonical_name_and_max_tokens(local_model: LocalChatModel) -> None:
    params = local_model._get_ls_params(max_tokens=7)
    assert params["ls_model_name"] == "local:smollm2-135m"
    assert params["ls_max_tokens"] == 7
    assert params["ls_provider"] == "llama.cpp"


def test_max_tokens_caps_output(local_model: LocalChatModel) -> None:
    reply = local_model.invoke("Write a long story about a dragon.", max_tokens=5)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] <= 5
    assert reply.response_metadata["finish_reason"] == "length"


def test_stop_sequence_ends_the_reply(local_model: LocalChatModel) -> None:
    prompt = "Count from 1 to 10."
    full = str(local_model.invoke(prompt, max_tokens=40).content)
    marker = full[len(full) // 2 : len(full) // 2 + 3]
    assert len(marker) == 3
    cut = str(local_model.invoke(prompt, max_tokens=40, stop=[marker]).content)
    assert marker not in cut
    assert full.startswith(cut) and len(cut) < len(full)  # greedy: same text up to the stop


def test_streaming_matches_invoke_and_counts_usage_once(local_model: LocalChatModel) -> None:
    chunks = list(local_model.stream("Say hello to Ada.", max_tokens=16))
    assert len(chunks) > 2
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    with_usage = [c for c in chunks if c.usage_metadata]
    named = [c for c in chunks if c.response_metadata.get("model_name")]
    assert len(with_usage) == 1 and len(named) == 1
    assert merged.response_metadata["model_name"] == "local:smollm2-135m"
    assert merged.usage_metadata is not None
    assert 0 < merged.usage_metadata["output_tokens"] <= 16
    whole = local_model.invoke("Say hello to Ada.", max_tokens=16)
    assert merged.content == whole.content  # greedy decoding: same text either way
    assert merged.usage_metadata["input_tokens"] == whole.usage_metadata["input_tokens"]  # type: ignore[index]


async def test_async_invoke_and_stream(local_model: LocalChatModel) -> None:
    reply = await local_model.ainvoke("Name a color.", max_tokens=8)
    assert reply.usage_metadata is not None
    parts = [c async for c in local_model.astream("Name a color.", max_tokens=8)]
    assert "".join(str(p.content) for p in parts) == reply.content


def test_json_schema_output_parses(local_model: LocalChatModel) -> None:
    structured = local_model.with_structured_output(City)
    city = structured.invoke("Describe Paris as JSON.", max_tokens=60)
    assert isinstance(city, City)
    assert isinstance(city.population, int)


def test_json_mode_and_include_raw(local_model: LocalChatModel) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "sure": {"type": "boolean"}},
        "required": ["answer", "sure"],
    }
    out = local_model.with_structured_output(schema, include_raw=True).invoke(
        "Is the sky blue? Answer as JSON.", max_tokens=40
    )
    assert out["parsing_error"] is None
    assert set(out["parsed"]) == {"answer", "sure"}
    assert out["raw"].usage_metadata["output_tokens"] > 0
    free = local_model.invoke(
        "Give me a JSON object about cats.", response_format={"type": "json_object"}, max_tokens=40
    )
    text = str(free.content)
    if free.response_metadata["finish_reason"] != "length":
        assert isinstance(json.loads(text), dict)
    assert text.lstrip().startswith("{")


def test_bind_tools_produces_a_call_that_a_tool_node_executes(local_model: LocalChatModel) -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    reply = local_model.bind_tools([get_weather], tool_choice="get_weather").invoke(
        "What is the weather in Paris?", max_tokens=40
    )
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"].get("city"), str)
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "tools")
    out = graph.compile().invoke({"messages": [HumanMessage("Weather in Paris?"), reply]})
    result = out["messages"][-1]
    assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"]
    assert "sunny" in str(result.content)


def test_tool_choice_none_answers_in_words(local_model: LocalChatModel) -> None:
    reply = local_model.bind_tools([get_weather], tool_choice="none").invoke("Hi there!")
    assert not reply.tool_calls and reply.content


def test_streamed_tool_call_arrives_whole(local_model: LocalChatModel) -> None:
    bound = local_model.bind_tools([get_weather], tool_choice="any")
    chunks = list(bound.stream("Weather in Rome?", max_tokens=40))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    assert merged.usage_metadata is not None


def test_react_agent_calls_the_tool_then_answers(local_model: LocalChatModel) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    agent = create_react_agent(local_model, [get_weather])
    out = agent.invoke(
        {"messages": [("user", "What is the weather in Paris?")]}, {"recursion_limit": 12}
    )
    messages = out["messages"]
    assert any(isinstance(m, ToolMessage) and "sunny" in str(m.content) for m in messages)
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls and final.content


def test_max_tool_rounds_forces_an_answer(local_model: LocalChatModel) -> None:
    call = {"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1", "type": "tool_call"}
    history = [
        HumanMessage("Weather in Oslo?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("Snow, -3C.", tool_call_id="c1", name="get_weather"),
    ]
    model = local_model.model_copy(update={"max_tool_rounds": 1})
    reply = model.bind_tools([get_weather]).invoke(history)
    assert not reply.tool_calls
    assert reply.response_metadata["tool_choice_forced"] == "max_tool_rounds"


def test_a_forced_answer_keeps_the_tool_prompt_so_its_prefix_is_reused(
    local_model: LocalChatModel,
) -> None:
    # Asked without the tool list, the forced answer's prompt would differ from the first
    # token on and be evaluated whole; under the same prompt only its last block is new.
    call = {"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1", "type": "tool_call"}
    history = [
        HumanMessage(_LONG * 2 + " Weather in Oslo?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("Snow, -3C.", tool_call_id="c1", name="get_weather"),
    ]
    local_model.bind_tools([get_weather]).invoke(history, max_tokens=16)
    model = local_model.model_copy(update={"max_tool_rounds": 1})
    reply = model.bind_tools([get_weather]).invoke(history, max_tokens=16)
    assert reply.response_metadata["tool_choice_forced"] == "max_tool_rounds"
    assert reply.response_metadata["reused_prompt_tokens"] >= 2 * PREFIX_BLOCK
    assert not reply.tool_calls and not str(reply.content).startswith("{")


def test_context_overflow_is_a_clear_error_or_a_documented_truncation(
    local_model: LocalChatModel,
) -> None:
    long = "lorem ipsum dolor sit amet " * 600  # ~3,600 tokens > n_ctx 2048
    with pytest.raises(ContextOverflow, match="context window is 2048"):
        local_model.invoke(long)
    truncating = local_model.model_copy(update={"overflow": "truncate"})
    history = [SystemMessage("Be brief."), HumanMessage(long), AIMessage("ok"), HumanMessage("Hi")]
    reply = truncating.invoke(history, max_tokens=8)
    assert reply.response_metadata["truncated_messages"] >= 1
    with pytest.raises(ContextOverflow):  # the last message alone does not fit: still an error
        truncating.invoke([HumanMessage(long)])
    assert local_model.invoke("Still alive?", max_tokens=4).content is not None


def test_one_loaded_model_is_shared_and_thread_safe(local_model: LocalChatModel) -> None:
    other = LocalChatModel(n_ctx=local_model.n_ctx, max_tokens=8)
    assert other.loaded is local_model.loaded
    results: list[Any] = []
    errors: list[BaseException] = []

    def ask(q: str) -> None:
        try:
            results.append(other.invoke(q))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(f"Say the number {i}.",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    assert all(r.usage_metadata["output_tokens"] <= 8 for r in results)


def test_usage_is_counted_by_the_budget_tracker(local_model: LocalChatModel) -> None:
    tracker = BudgetTracker(Budget(tokens={"total": 5000}))
    handler = BudgetCallbackHandler(tracker)
    reply = local_model.invoke("Hello!", config={"callbacks": [handler]})
    usage = reply.usage_metadata
    assert usage is not None
    assert tracker.spent.input_tokens == usage["input_tokens"]
    assert tracker.spent.output_tokens == usage["output_tokens"]
    assert tracker.spent.usd == Decimal(0)
    assert tracker.spent.model_calls == 1 and tracker.held.total_tokens == 0


def test_user_price_per_token_is_charged(local_model: LocalChatModel) -> None:
    priced = LocalChatModel(
        model_name="local:smollm2-135m-priced",
        model_path=str(local_model.loaded.path),
        n_ctx=local_model.n_ctx,
        max_tokens=8,
        input_price=Decimal("1.0"),
        output_price=Decimal("2.0"),
        usd_per_compute_second=Decimal("0.001"),
    )
    tracker = BudgetTracker(Budget(usd=1))
    reply = priced.invoke("Hi", config={"callbacks": [BudgetCallbackHandler(tracker)]})
    u = reply.usage_metadata
    assert u is not None
    expected = (Decimal(u["input_tokens"]) * 1 + Decimal(u["output_tokens"]) * 2) / 1_000_000
    assert tracker.spent.usd == expected
    assert Decimal(reply.response_metadata["compute_usd"]) > 0


# ---- determinism: the same messages give the same answer, whatever was asked before --------

_LONG = "Budgets matter for agents that call paid tools. " * 30


def _answer(model: LocalChatModel, messages: list[Any]) -> tuple[str, Any, Any]:
    reply = model.invoke(messages, max_tokens=16)
    meta = reply.response_metadata
    return str(reply.content), meta.get("mean_logprob"), meta.get("reused_prompt_tokens")


def test_same_prompt_three_times_interleaved_gives_one_answer(local_model: LocalChatModel) -> None:
    # Asking the same long prompt again right away is the case llama-cpp-python's own prefix
    # reuse gets wrong: the whole prompt is cached, it re-evaluates one token alone, and a
    # one-token batch takes other kernels than a full prefill (logits differ by ~0.5 here).
    sky = [SystemMessage(_LONG), HumanMessage("What color is the sky?")]
    fruit = [SystemMessage(_LONG), HumanMessage("Name a fruit.")]
    other = [HumanMessage("Count to three.")]
    seen = [_answer(local_model, sky)]
    seen.append(_answer(local_model, sky))
    _answer(local_model, fruit)
    seen.append(_answer(local_model, sky))
    _answer(local_model, other)
    seen.append(_answer(local_model, sky))
    assert len({(text, logprob) for text, logprob, _ in seen}) == 1, seen
    fresh = LocalChatModel(n_ctx=local_model.n_ctx, max_tokens=16, reuse_prefix=False)
    assert _answer(fresh, sky)[:2] == seen[0][:2]


def test_a_continuing_conversation_reuses_whole_blocks_and_answers_as_fresh(
    local_model: LocalChatModel,
) -> None:
    first = [SystemMessage(_LONG), HumanMessage("Summarize that in five words.")]
    text, _, _ = _answer(local_model, first)
    second = [*first, AIMessage(text), HumanMessage("Shorter, please.")]
    again, logprob, reused = _answer(local_model, second)
    assert reused > 0 and reused % PREFIX_BLOCK == 0  # the system prompt was not paid twice
    fresh = LocalChatModel(n_ctx=local_model.n_ctx, max_tokens=16, reuse_prefix=False)
    fresh_text, fresh_logprob, fresh_reused = _answer(fresh, second)
    assert fresh_reused == 0
    assert (again, logprob) == (fresh_text, fresh_logprob)


def test_a_prompt_asked_again_after_another_restores_its_saved_prefix(
    local_model: LocalChatModel,
) -> None:
    # An agent's next run (or a second agent) on the same long system prompt, after a prompt
    # that shares nothing with it: the saved state of its aligned prefix is restored.
    # Its first block is cached already (an earlier prompt on _LONG): it is still saved.
    _answer(local_model, [SystemMessage(_LONG), HumanMessage("Name a fruit.")])
    long = [SystemMessage(_LONG * 3), HumanMessage("What color is the sky?")]
    first = _answer(local_model, long)
    _answer(local_model, [HumanMessage("Count to three.")])
    text, logprob, reused = _answer(local_model, long)
    assert reused >= 2 * PREFIX_BLOCK and reused % PREFIX_BLOCK == 0
    assert (text, logprob) == first[:2]


async def test_async_and_stream_match_invoke_after_other_prompts(
    local_model: LocalChatModel,
) -> None:
    local_model.invoke("Name an animal.", max_tokens=8)
    sync = local_model.invoke("Name a color.", max_tokens=8).content
    local_model.invoke([SystemMessage(_LONG), HumanMessage("Name a city.")], max_tokens=8)
    reply = await local_model.ainvoke("Name a color.", max_tokens=8)
    parts = [c async for c in local_model.astream("Name a color.", max_tokens=8)]
    assert reply.content == sync == "".join(str(p.content) for p in parts)
