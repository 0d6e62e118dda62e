"""BudgetMiddleware on langchain.agents.create_agent (real agent graph, fake model)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, Counter, ToolCallingFake, make_search
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agent_budget import Budget, BudgetExceeded
from agent_budget.integrations.langchain import BudgetMiddleware

CFG: dict[str, Any] = {"recursion_limit": 200}


def budget(**kw: Any) -> Budget:
    return Budget(prices={"search": 0.01}, model_prices={FAKE_MODEL: FAKE_PRICE}, **kw)


def agent(model: ToolCallingFake, counter: Counter, b: Budget, **kw: Any) -> Any:
    return create_agent(model, [make_search(counter)], middleware=[BudgetMiddleware(b)], **kw)


def test_finalize_after_exactly_the_budgeted_calls() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=30)
    out = agent(model, counter, budget(tool_calls={"search": 5})).invoke(
        {"messages": [("user", "go")]}, CFG
    )
    assert counter.n == 5
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls
    after_tools = [seen for seen in model.seen if isinstance(seen[-1], ToolMessage)]
    assert len(after_tools) == 5
    for i, seen in enumerate(after_tools, start=1):
        assert f"search Budget Used: {i}, search Budget Remaining: {5 - i}" in seen[-1].content
    assert "budget is exhausted" in model.seen[-1][-1].content
    # The budget text is shown at call time; the stored history stays the tools' own output.
    stored = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert all("<budget>" not in m.content for m in stored)


def test_raise_mode() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=30)
    a = agent(model, counter, budget(tool_calls={"search": 5}, on_exhausted="raise"))
    with pytest.raises(BudgetExceeded):
        a.invoke({"messages": [("user", "go")]}, CFG)
    assert counter.n == 5


def test_interrupt_mode_resumes_after_top_up() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=30)
    a = agent(
        model,
        counter,
        budget(tool_calls={"search": 3}, on_exhausted="interrupt"),
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "mw-int"}, "recursion_limit": 200}
    out = a.invoke({"messages": [("user", "go")]}, cfg)
    assert counter.n == 3 and "__interrupt__" in out
    out = a.invoke(Command(resume={"tool_calls": {"search": 2}}), cfg)
    assert counter.n == 5 and "__interrupt__" in out
    out = a.invoke(Command(resume="finalize"), cfg)
    assert counter.n == 5
    assert isinstance(out["messages"][-1], AIMessage) and not out["messages"][-1].tool_calls


def test_parallel_calls_10_requested_3_allowed() -> None:
    counter, model = Counter(), ToolCallingFake(calls_per_turn=10, max_tool_turns=1)
    out = agent(model, counter, budget(tool_calls={"search": 3})).invoke(
        {"messages": [("user", "go")]}, CFG
    )
    assert counter.n == 3
    refused = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.status == "error"]
    assert len(refused) == 7


async def test_async_and_stream() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=30)
    a = agent(model, counter, budget(tool_calls={"search": 4}))
    out = await a.ainvoke({"messages": [("user", "go")]}, CFG)
    assert counter.n == 4 and not out["messages"][-1].tool_calls
    counter2, model2 = Counter(), ToolCallingFake(calls_per_turn=4, max_tool_turns=30)
    a2 = agent(model2, counter2, budget(tool_calls={"search": 6}))
    chunks = [c async for c in a2.astream({"messages": [("user", "go")]}, CFG)]
    assert chunks and counter2.n == 6


def test_thread_spend_persists_in_checkpointed_state() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=3)
    a = agent(model, counter, budget(tool_calls={"search": 5}), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "mw-thread"}, "recursion_limit": 200}
    a.invoke({"messages": [("user", "one")]}, cfg)
    model.turns = 0
    a.invoke({"messages": [("user", "two")]}, cfg)
    assert counter.n == 5
    saved = a.get_state(cfg).values["agent_budget"]
    assert saved["spent"]["tool_calls"] == {"search": 5}


def test_usd_limit_with_reserve_ends_in_a_paid_final_answer() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=100)
    a = agent(model, counter, budget(usd="0.05", reserve_usd="0.002"), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "mw-usd"}, "recursion_limit": 200}
    out = a.invoke({"messages": [("user", "go")]}, cfg)
    from decimal import Decimal

    spent = Decimal(a.get_state(cfg).values["agent_budget"]["spent"]["usd"])
    assert spent <= Decimal("0.05")
    assert out["messages"][-1].content.startswith("final")


class FlakyFake(ToolCallingFake):
    failures_left: int = 2

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise TimeoutError("provider timed out")
        return super()._generate(messages, stop, run_manager, **kw)


def test_model_retries_each_attempt_reserved_and_only_answers_billed() -> None:
    from agent_budget import Retry

    counter, model = Counter(), FlakyFake(max_tool_turns=0)
    mw = BudgetMiddleware(
        budget(model_calls=5), model_retry=Retry(attempts=3, on=(TimeoutError,), wait_initial=0)
    )
    a = create_agent(model, [make_search(counter)], middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "retry"}, "recursion_limit": 50}
    out = a.invoke({"messages": [("user", "go")]}, cfg)
    assert out["messages"][-1].content.startswith("final")
    saved = a.get_state(cfg).values["agent_budget"]["spent"]
    assert saved["model_calls"] == 1  # two timeouts returned no usage to bill


def test_model_retries_give_up_after_the_policy_attempts() -> None:
    from agent_budget import Retry

    counter, model = Counter(), FlakyFake(failures_left=10)
    mw = BudgetMiddleware(
        budget(), model_retry=Retry(attempts=3, on=(TimeoutError,), wait_initial=0)
    )
    with pytest.raises(TimeoutError):
        create_agent(model, [make_search(counter)], middleware=[mw]).invoke(
            {"messages": [("user", "go")]}, CFG
        )
    assert model.failures_left == 7
