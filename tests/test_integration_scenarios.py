"""The behaviour every integration promises, written once and run against each of them:
`with_budget` (a LangGraph graph), `BudgetMiddleware` (`create_agent`) and the bare
`BudgetCallbackHandler` (a hand-written graph passing it in its config).

The handler puts model calls on a budget and nothing else: scenarios about tool calls, or
about ending a run the budget's way (finalize / interrupt), need a graph integration and
say so in `needs`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, Counter, ToolCallingFake, make_search
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
from langgraph.types import Command

from agent_budget import Budget, BudgetCallbackHandler, BudgetExceeded, BudgetTracker
from agent_budget.integrations.langchain import BudgetMiddleware
from agent_budget.integrations.langgraph import with_budget

PRICES = {FAKE_MODEL: FAKE_PRICE}


def budget(**kw: Any) -> Budget:
    return Budget(prices={"search": 0.01}, model_prices=PRICES, **kw)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


@dataclass
class Agent:
    graph: Any
    tracker: Callable[[dict[str, Any]], BudgetTracker | None]


def _with_budget(model: Any, tools: list[Any], b: Budget, saver: Any = None) -> Agent:
    graph = with_budget(create_react_agent(model, tools, checkpointer=saver), b)
    tracker = BudgetTracker(b)

    def run(cfg: dict[str, Any]) -> BudgetTracker | None:
        return tracker

    graph = graph.with_config(configurable={"budget_tracker": tracker}) if saver is None else graph
    return Agent(graph, run if saver is None else lambda cfg: None)


def _middleware(model: Any, tools: list[Any], b: Budget, saver: Any = None) -> Agent:
    from langchain.agents import create_agent

    mw = BudgetMiddleware(b)
    graph = create_agent(model, tools, middleware=[mw], checkpointer=saver)
    return Agent(graph, lambda out: mw.tracker(out) if out else None)


def _handler(model: Any, tools: list[Any], b: Budget, saver: Any = None) -> Agent:
    tracker = BudgetTracker(b)
    bound = model.bind_tools(tools)

    def llm(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("llm", llm)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", tools_condition)
    g.add_edge("tools", "llm")
    graph = g.compile(checkpointer=saver).with_config(callbacks=[BudgetCallbackHandler(tracker)])
    return Agent(graph, lambda out: tracker)


INTEGRATIONS = {"with_budget": _with_budget, "middleware": _middleware, "handler": _handler}
GRAPH_ONLY = ["with_budget", "middleware"]  # tool calls and on_exhausted need a graph


def cfg(**extra: Any) -> dict[str, Any]:
    return {"recursion_limit": 200, **extra}


# --- caps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", INTEGRATIONS)
def test_model_calls_capped_exactly(kind: str) -> None:
    model = ToolCallingFake(max_tool_turns=30)
    agent = INTEGRATIONS[kind](
        model, [make_search(Counter())], budget(model_calls=3, on_exhausted="raise")
    )
    with pytest.raises(BudgetExceeded, match="model_calls"):
        agent.graph.invoke({"messages": [("user", "go")]}, cfg())
    assert model.turns == 3


@pytest.mark.parametrize("kind", INTEGRATIONS)
def test_usd_cap_is_never_passed(kind: str) -> None:
    model = ToolCallingFake(max_tool_turns=30)
    # Each call costs $0.00014 and reserves up to ~$0.00015: $0.0010 pays for 6.
    agent = INTEGRATIONS[kind](
        model,
        [make_search(Counter())],
        Budget(usd="0.0010", model_prices=PRICES, on_exhausted="raise"),
    )
    with pytest.raises(BudgetExceeded, match="usd"):
        agent.graph.invoke({"messages": [("user", "go")]}, cfg())
    assert 5 <= model.turns <= 7
    assert model.turns * 0.00014 <= 0.0010


@pytest.mark.parametrize("kind", GRAPH_ONLY)
def test_tool_calls_capped_exactly_then_finalize(kind: str) -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=30)
    agent = INTEGRATIONS[kind](model, [make_search(counter)], budget(tool_calls={"search": 4}))
    out = agent.graph.invoke({"messages": [("user", "go")]}, cfg())
    assert counter.n == 4
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls
    assert "budget is exhausted" in model.seen[-1][-1].content  # told why, without tools


# --- parallel refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", GRAPH_ONLY)
def test_parallel_tool_calls_run_exactly_what_fits(kind: str) -> None:
    counter, model = Counter(), ToolCallingFake(calls_per_turn=8, max_tool_turns=1)
    agent = INTEGRATIONS[kind](model, [make_search(counter)], budget(tool_calls={"search": 3}))
    out = agent.graph.invoke({"messages": [("user", "go")]}, cfg())
    assert counter.n == 3
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    refused = [m for m in results if m.status == "error"]
    assert len(results) == 8 and len(refused) == 5
    assert all("tool_calls.search" in str(m.content) for m in refused)


def test_parallel_model_calls_through_the_handler_run_exactly_what_fits() -> None:
    tracker = BudgetTracker(budget(model_calls=3))
    model = ToolCallingFake()
    outs = model.batch(
        [[("user", f"q{i}")] for i in range(6)],
        {"callbacks": [BudgetCallbackHandler(tracker)]},
        return_exceptions=True,
    )
    assert sum(isinstance(o, AIMessage) for o in outs) == 3
    assert sum(isinstance(o, BudgetExceeded) for o in outs) == 3
    assert model.turns == 3 and tracker.spent.model_calls == 3


# --- raise / interrupt ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", GRAPH_ONLY)
def test_interrupt_then_top_up_then_finalize(kind: str) -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=30)
    agent = INTEGRATIONS[kind](
        model,
        [make_search(counter)],
        budget(tool_calls={"search": 2}, on_exhausted="interrupt"),
        InMemorySaver(),
    )
    c = cfg(configurable={"thread_id": f"scenario-{kind}"})
    out = agent.graph.invoke({"messages": [("user", "go")]}, c)
    assert counter.n == 2 and out["__interrupt__"][0].value["type"] == "agent_budget.exhausted"
    out = agent.graph.invoke(Command(resume={"tool_calls": {"search": 1}}), c)
    assert counter.n == 3 and "__interrupt__" in out
    out = agent.graph.invoke(Command(resume="finalize"), c)
    assert counter.n == 3 and out["messages"][-1].content.startswith("final")


# --- async and streaming --------------------------------------------------------------------


@pytest.mark.parametrize("kind", INTEGRATIONS)
async def test_async_runs_keep_the_cap(kind: str) -> None:
    model = ToolCallingFake(max_tool_turns=30)
    agent = INTEGRATIONS[kind](
        model, [make_search(Counter())], budget(model_calls=4, on_exhausted="raise")
    )
    with pytest.raises(BudgetExceeded):
        await agent.graph.ainvoke({"messages": [("user", "go")]}, cfg())
    assert model.turns == 4


@pytest.mark.parametrize("kind", INTEGRATIONS)
@pytest.mark.parametrize("mode", ["values", "messages"])
def test_streaming_counts_each_call_once(kind: str, mode: str) -> None:
    model = ToolCallingFake(max_tool_turns=2)
    agent = INTEGRATIONS[kind](model, [make_search(Counter())], budget(usd=1))
    chunks = list(agent.graph.stream({"messages": [("user", "go")]}, cfg(), stream_mode=mode))
    assert chunks and model.turns == 3
    tracker = agent.tracker(chunks[-1] if mode == "values" else {})
    if tracker is not None:
        assert tracker.spent.model_calls == 3
        assert tracker.spent.input_tokens == 300 and tracker.spent.output_tokens == 60


# --- nested -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", INTEGRATIONS)
def test_a_sub_agent_spends_from_the_parents_budget_once(kind: str) -> None:
    inner_model = ToolCallingFake(max_tool_turns=1)
    inner = INTEGRATIONS[kind](inner_model, [make_search(Counter())], budget(usd=1, name="inner"))

    @tool
    def ask(query: str) -> str:
        """Ask the sub-agent."""
        return str(
            inner.graph.invoke({"messages": [("user", query)]}, cfg())["messages"][-1].content
        )

    outer_model = ToolCallingFake(max_tool_turns=1, tool_name="ask")
    top = budget(model_calls=4, on_exhausted="raise")
    tracker = BudgetTracker(top)
    outer = with_budget(create_react_agent(outer_model, [ask]), top)
    out = outer.invoke(
        {"messages": [("user", "go")]}, cfg(configurable={"budget_tracker": tracker})
    )
    # outer: ask, answer; inner: search, answer. Four calls, each on the top budget once.
    assert (outer_model.turns, inner_model.turns) == (2, 2)
    assert out["messages"][-1].content.startswith("final")
    assert tracker.spent.model_calls == 4 and tracker.held.model_calls == 0


def test_scenarios_cover_every_integration() -> None:
    assert set(INTEGRATIONS) == {"with_budget", "middleware", "handler"}
    asyncio.get_event_loop_policy()  # the async scenarios run under pytest-asyncio


def test_building_blocks_composed_by_hand() -> None:
    from agent_budget.integrations.tool_node import budgeted_tool_node

    counter, model = Counter(), ToolCallingFake(calls_per_turn=3, max_tool_turns=30)
    tools = [make_search(counter)]
    bound = model.bind_tools(tools)

    def llm(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("llm", llm)
    g.add_node("tools", budgeted_tool_node(tools))
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", tools_condition)
    g.add_edge("tools", "llm")
    agent = with_budget(g, budget(tool_calls={"search": 7}))
    out = agent.invoke({"messages": [("user", "go")]}, cfg())
    assert counter.n == 7  # each call guarded once, the cap exact across parallel calls
    assert out["messages"][-1].content.startswith("final")
    nodes = set(agent.get_graph().nodes)
    assert nodes == {"__start__", "llm", "tools", "budget_finalize", "__end__"}


def test_a_graph_composed_by_hand_from_the_public_blocks() -> None:
    """`budgeted_tool_node`, `budget_condition` and `finalize_node` wired into a user's own
    `StateGraph` like `ToolNode` and `tools_condition`; `with_budget` then only gives each
    run its budget and leaves the graph as written."""
    from langgraph.graph import END

    from agent_budget.integrations.langgraph import (
        FINALIZE_NODE,
        BudgetChannel,
        budget_condition,
        budgeted_tool_node,
        finalize_node,
    )

    class BudgetedState(State, BudgetChannel):
        pass

    counter, model = Counter(), ToolCallingFake(calls_per_turn=3, max_tool_turns=30)
    tools = [make_search(counter)]
    bound = model.bind_tools(tools)

    def llm(state: BudgetedState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    g = StateGraph(BudgetedState)
    g.add_node("llm", llm)
    g.add_node("tools", budgeted_tool_node(tools))
    g.add_node(FINALIZE_NODE, finalize_node(model))
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", budget_condition())
    g.add_edge("tools", "llm")
    g.add_edge(FINALIZE_NODE, END)
    agent = with_budget(g, budget(tool_calls={"search": 7}, model_calls=20))
    assert set(agent.get_graph().nodes) == set(g.compile().get_graph().nodes)  # as written

    updates = list(agent.stream({"messages": [("user", "go")]}, cfg(), stream_mode="updates"))
    assert counter.n == 7  # the cap exact across the parallel calls of each step
    tool_tasks = [u["tools"] for u in updates if "tools" in u]
    # Each call of a 3-call step is a task of its own (Send): 3 + 3 + 3 (1 paid, 2 refused),
    # then one more step the budget refuses whole, and the run stops.
    assert len(tool_tasks) == 12
    shown = [m for u in tool_tasks for m in u["messages"]]
    used = sorted(int(m.content.split("search Budget Used: ")[1].split(",")[0]) for m in shown)
    assert used[-1] == 7 and all("<budget>" in m.content for m in shown)
    assert sum("Not run: budget exceeded on tool_calls.search" in m.content for m in shown) == 5
    (final,) = [u[FINALIZE_NODE] for u in updates if FINALIZE_NODE in u]
    answer = final["messages"][-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert answer.content.startswith("final")
    assert "budget is exhausted" in model.seen[-1][-1].content  # told why, without tools


def test_a_hand_composed_graph_raises_and_interrupts_the_budget_way() -> None:
    from langgraph.graph import END

    from agent_budget.integrations.langgraph import (
        FINALIZE_NODE,
        budget_condition,
        budgeted_tool_node,
        finalize_node,
    )

    def build(counter: Counter, saver: Any = None) -> Any:
        model = ToolCallingFake(max_tool_turns=30)
        tools = [make_search(counter)]
        bound = model.bind_tools(tools)
        g = StateGraph(State)
        g.add_node("llm", lambda state: {"messages": [bound.invoke(state["messages"])]})
        g.add_node("tools", budgeted_tool_node(tools))
        g.add_node(FINALIZE_NODE, finalize_node(model))
        g.add_edge(START, "llm")
        g.add_conditional_edges("llm", budget_condition(tools_condition))
        g.add_edge("tools", "llm")
        g.add_edge(FINALIZE_NODE, END)
        return g.compile(checkpointer=saver)

    counter = Counter()
    raising = with_budget(build(counter), budget(tool_calls={"search": 2}, on_exhausted="raise"))
    with pytest.raises(BudgetExceeded, match=r"tool_calls\.search"):
        raising.invoke({"messages": [("user", "go")]}, cfg())
    assert counter.n == 2

    counter = Counter()
    paused = with_budget(
        build(counter, InMemorySaver()), budget(tool_calls={"search": 2}, on_exhausted="interrupt")
    )
    c = cfg(configurable={"thread_id": "composed"})
    out = paused.invoke({"messages": [("user", "go")]}, c)
    assert counter.n == 2 and out["__interrupt__"][0].value["limit"] == "tool_calls.search"
    out = paused.invoke(Command(resume={"tool_calls": {"search": 1}}), c)
    assert counter.n == 3 and "__interrupt__" in out  # topped up: one more search, then again
    out = paused.invoke(Command(resume="finalize"), c)
    assert counter.n == 3 and out["messages"][-1].content.startswith("final")
