"""Bad input inside a budgeted run: an empty query, an engine that times out or sends
garbage, a huge or binary page. Each is an error tool message the model reads, each call is
still counted in the budget (the budget message after it says so), and the run goes on.
Real LangGraph graphs and with_budget; only the chat model is scripted."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, ScriptedFake
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import create_react_agent
from search_standin import Reply, StandIn

from agent_budget import Budget, with_budget
from agent_budget.tools.search import (
    HttpFetcher,
    OfflineBackend,
    OfflineFetcher,
    search_tools,
)
from agent_budget.tools.search.engines import SearxngBackend

CFG: dict[str, Any] = {"recursion_limit": 100}


def budget(queries: int = 5, urls: int = 5) -> Budget:
    return Budget(
        usd=1.0,
        tool_calls={"web_search": queries, "fetch_page": urls},
        tool_labels={"web_search": "Query", "fetch_page": "URL"},
        prices={"web_search": 0.01, "fetch_page": 0.002},
        model_prices={FAKE_MODEL: FAKE_PRICE},
    )


def counts(message: ToolMessage) -> tuple[int, int]:
    text = str(message.content)
    q = re.search(r"Query Budget Used: (\d+)", text)
    u = re.search(r"URL Budget Used: (\d+)", text)
    assert q and u, text
    return int(q.group(1)), int(u.group(1))


def tool_messages(out: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in out["messages"] if isinstance(m, ToolMessage)]


def test_bad_input_is_a_counted_tool_error_and_the_run_goes_on(
    backend: OfflineBackend, standin: StandIn
) -> None:
    standin.routes["/huge"] = lambda r: Reply(200, b"a" * 300_000, "text/plain")
    standin.routes["/bin"] = lambda r: Reply(200, b"\x00\x01\x02" * 100, "application/zip")
    fetcher = OfflineFetcher(backend, HttpFetcher(max_bytes=100_000, allow_private=True))
    tools = search_tools(backend, fetcher)
    model = ScriptedFake(
        script=[
            [("web_search", {"query": ""})],
            [("fetch_page", {"url": standin.url + "/huge"})],
            [("fetch_page", {"url": standin.url + "/bin"})],
            [("web_search", {"query": "binomial coefficient"})],
            [("fetch_page", {"url": "offline://stdlib/math#comb"})],
            "The binomial coefficient is math.comb.",
        ]
    )
    agent = with_budget(create_react_agent(model, tools, checkpointer=InMemorySaver()), budget())
    config = {**CFG, "configurable": {"thread_id": "bad-input"}}
    out = agent.invoke({"messages": [("user", "What is math.comb also called?")]}, config)

    msgs = tool_messages(out)
    assert [m.status for m in msgs] == ["error", "error", "error", "success", "success"]
    assert "empty query" in str(msgs[0].content)
    assert "larger than 100,000 bytes" in str(msgs[1].content)
    assert "application/zip" in str(msgs[2].content)
    # Every call, failed or not, is counted, and the model is shown it after the call.
    assert [counts(m) for m in msgs] == [(1, 0), (1, 1), (1, 2), (2, 2), (2, 3)]
    assert all(str(m.content).count("<budget>") == 1 for m in msgs)
    assert "USD Used: 0.0267," in str(msgs[-1].content)  # 5 tool calls + 5 model turns
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and "math.comb" in str(last.content)
    spent = agent.get_spend(config)
    assert spent is not None and spent.tool_calls == {"web_search": 2, "fetch_page": 3}
    # Tools are paid per call, failed or not (2 x $0.01 + 3 x $0.002); the rest is six
    # model turns of 100 input + 20 output tokens at $1 / $2 per million.
    assert spent.usd == Decimal("0.026") + 6 * Decimal(100 * 1 + 20 * 2) / 10**6


def test_an_engine_that_times_out_or_sends_garbage_is_counted(
    backend: OfflineBackend, standin: StandIn
) -> None:
    replies = iter(
        [
            Reply(200, b"{}", "application/json", delay=2.0),  # timeout
            Reply(200, b"<html>captcha</html>"),  # garbage instead of JSON
            Reply(500, b"boom", "text/plain"),  # server error
        ]
    )
    standin.routes["/search"] = lambda r: next(replies)
    engine = SearxngBackend(standin.url, timeout=0.3, retries=0)
    model = ScriptedFake(
        script=[[("web_search", {"query": "heapq"})] for _ in range(3)] + ["gave up"]
    )
    agent = with_budget(
        create_react_agent(model, search_tools(engine, OfflineFetcher(backend))),
        budget(queries=3),
    )
    out = agent.invoke({"messages": [("user", "find heapq docs")]}, CFG)
    msgs = tool_messages(out)
    assert [m.status for m in msgs] == ["error"] * 3
    assert "did not answer" in str(msgs[0].content)
    assert "not JSON" in str(msgs[1].content)
    assert "HTTP 500" in str(msgs[2].content)
    assert [counts(m)[0] for m in msgs] == [1, 2, 3]
    assert "Query Budget Remaining: 0" in str(msgs[-1].content)
    assert out["messages"][-1].content == "gave up"


def test_parallel_bad_calls_in_one_turn_are_each_counted(backend: OfflineBackend) -> None:
    model = ScriptedFake(
        script=[
            [
                ("web_search", {"query": ""}),
                ("web_search", {"query": "   "}),
                ("web_search", {"query": "Mersenne Twister"}),
                ("fetch_page", {"url": "not a url"}),
            ],
            "done",
        ]
    )
    agent = with_budget(
        create_react_agent(model, search_tools(backend, OfflineFetcher(backend))),
        budget(queries=5, urls=5),
    )
    out = agent.invoke({"messages": [("user", "go")]}, CFG)
    msgs = tool_messages(out)
    assert sorted(m.status for m in msgs) == ["error", "error", "error", "success"]
    assert max(counts(m) for m in msgs) == (3, 1)


async def test_async_run_counts_failed_calls(backend: OfflineBackend) -> None:
    model = ScriptedFake(
        script=[
            [("fetch_page", {"url": "offline://stdlib/nope"})],
            [("web_search", {"query": "imaginary literal"})],
            "ok",
        ]
    )
    agent = with_budget(
        create_react_agent(model, search_tools(backend, OfflineFetcher(backend))), budget()
    )
    out = await agent.ainvoke({"messages": [("user", "go")]}, CFG)
    msgs = tool_messages(out)
    assert [m.status for m in msgs] == ["error", "success"]
    assert [counts(m) for m in msgs] == [(0, 1), (1, 1)]


@pytest.mark.parametrize("queries", [1, 2])
def test_a_query_budget_of_n_allows_n_searches_even_when_they_fail(
    backend: OfflineBackend, queries: int
) -> None:
    model = ScriptedFake(script=[[("web_search", {"query": ""})] for _ in range(5)] + ["end"])
    agent = with_budget(
        create_react_agent(model, search_tools(backend, OfflineFetcher(backend))),
        budget(queries=queries),
    )
    out = agent.invoke({"messages": [("user", "go")]}, CFG)
    errors = [m for m in tool_messages(out) if "empty query" in str(m.content)]
    assert len(errors) == queries
