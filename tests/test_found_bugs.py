"""The bugs found by trying agent-budget as a user would (issue 11), each as a scenario on
real graphs, a real SQLite ledger and real checkpointers; only the chat models are fakes.

- A step's paid calls survive LangGraph running the node again: on resume after an
  interrupt (a ToolNode running all calls in one task, create_react_agent v1) and on an
  async RetryPolicy retry while sibling calls still run.
- A chain of budgeted agents A -> B -> C spends A's model calls once each.
- After each top-up the model is shown the new remaining.
"""

from __future__ import annotations

import asyncio
import collections
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, ScriptedFake, ToolCallingFake
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
from langgraph.types import Command, RetryPolicy, interrupt
from pydantic import Field
from resume_child import run_phase

from agent_budget import Budget, with_budget
from agent_budget.ledger import Ledger
from agent_budget.tracker import BudgetTracker

PRICES = {FAKE_MODEL: FAKE_PRICE}


@pytest.fixture(autouse=True)
def _no_ambient_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_BUDGET_LEDGER", raising=False)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def tool_graph(
    style: str, model: ScriptedFake, tools: list[Any], retry: RetryPolicy | None = None
) -> Any:
    """The two graph shapes that run all calls of a step in one tool-node task."""
    if style == "react_v1":
        return create_react_agent(model, tools, version="v1", checkpointer=InMemorySaver())
    bound = model.bind_tools(tools)

    def llm(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def allm(state: State) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    from langgraph._internal._runnable import RunnableCallable

    g = StateGraph(State)
    g.add_node("llm", RunnableCallable(llm, allm))
    g.add_node("tools", ToolNode(tools), retry_policy=retry)
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", tools_condition)
    g.add_edge("tools", "llm")
    return g.compile(checkpointer=InMemorySaver())


def ledger_rows(db: Path) -> list[dict[str, Any]]:
    return list(Ledger.open(db).rows())


def call_id(row: dict[str, Any]) -> str:
    """The tool call id in a row's idempotency key ``<run_id>:<tool_call_id>#<attempt>``."""
    return str(row["call_key"]).split(":", 1)[1].rsplit("#", 1)[0]


def committed_usd(rows: list[dict[str, Any]]) -> Decimal:
    return sum((r["usd"] for r in rows if r["outcome"] in ("ok", "error")), Decimal(0))


# --- 1. resume after an interrupt does not run or charge finished calls again -----------


@pytest.mark.parametrize("style", ["toolnode", "react_v1"])
def test_resume_runs_and_charges_each_finished_call_once(style: str, tmp_path: Path) -> None:
    runs: collections.Counter[str] = collections.Counter()

    @tool
    def search(query: str) -> str:
        """Search the web."""
        runs[query] += 1
        return f"found {query}"

    @tool
    def approve(what: str) -> str:
        """Ask a person to approve."""
        runs["approve"] += 1
        return f"approved: {interrupt({'approve': what})}"

    model = ScriptedFake(
        script=[
            [("search", {"query": "a"}), ("search", {"query": "b"}), ("approve", {"what": "x"})]
        ]
    )
    db = tmp_path / "spend.db"
    budget = Budget(usd="0.05", prices={"search": "0.01"}, model_prices=PRICES, ledger=str(db))
    agent = with_budget(tool_graph(style, model, [search, approve]), budget)
    cfg: dict[str, Any] = {"configurable": {"thread_id": f"resume-{style}"}}

    out = agent.invoke({"messages": [("user", "go")]}, cfg)
    assert out["__interrupt__"][0].value == {"approve": "x"}
    out = agent.invoke(Command(resume="yes"), cfg)
    assert out["messages"][-1].content.startswith("final")

    assert runs["a"] == 1 and runs["b"] == 1  # bodies run once
    rows = ledger_rows(db)
    ok = collections.Counter(
        call_id(r) for r in rows if r["kind"] == "tool" and r["outcome"] == "ok"
    )
    assert ok == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 1}  # one row per call
    spend = agent.get_spend(cfg)
    assert spend is not None
    assert committed_usd(rows) == spend.usd <= Decimal("0.05")
    assert spend.tool_calls == {"search": 2, "approve": 1}
    # Every row's idempotency key starts with the row's own run id: the two join.
    assert all(str(r["call_key"]).split(":", 1)[0] == r["run_id"] for r in rows)
    approved = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.name == "approve"]
    assert [m.content.split("\n\n")[0] for m in approved] == ["approved: yes"]


# --- 2. an async retry waits for siblings still running instead of running them again -----


class Flaky(Exception):
    pass


@pytest.mark.parametrize("style", ["toolnode"])
async def test_async_retry_runs_each_paid_call_once_and_records_every_run(
    style: str, tmp_path: Path
) -> None:
    runs: collections.Counter[str] = collections.Counter()

    @tool
    async def search(query: str) -> str:
        """Search the web (slow)."""
        runs[query] += 1
        await asyncio.sleep(0.3)
        return f"found {query}"

    @tool
    async def flaky(what: str) -> str:
        """Fails the first time."""
        runs["flaky"] += 1
        if runs["flaky"] == 1:
            await asyncio.sleep(0.02)
            raise Flaky("try again")
        return "fine"

    model = ScriptedFake(
        script=[[("search", {"query": "a"}), ("search", {"query": "b"}), ("flaky", {"what": "x"})]]
    )
    db = tmp_path / "spend.db"
    budget = Budget(
        usd=1, prices={"search": "0.01", "flaky": "0.01"}, model_prices=PRICES, ledger=str(db)
    )
    retry = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False, retry_on=Flaky)
    agent = with_budget(tool_graph(style, model, [search, flaky], retry=retry), budget)
    cfg: dict[str, Any] = {"configurable": {"thread_id": "retry"}}
    out = await agent.ainvoke({"messages": [("user", "go")]}, cfg)
    assert out["messages"][-1].content.startswith("final")
    await asyncio.sleep(0.4)  # anything left running would have finished by now

    rows = [r for r in ledger_rows(db) if r["kind"] == "tool"]
    made = collections.Counter(call_id(r) for r in rows if r["outcome"] in ("ok", "error"))
    assert runs["a"] == 1 and runs["b"] == 1 and runs["flaky"] == 2
    assert made == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 2}  # bodies run = rows
    spend = agent.get_spend(cfg)
    assert spend is not None and committed_usd(ledger_rows(db)) == spend.usd


# --- 4. a chain of budgeted agents spends the top budget's calls once each ----------------


class Observing(ToolCallingFake):
    """Records, at each call, how many model calls the top budget holds."""

    top: Any = None
    held: list[int] = Field(default_factory=list)

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        self.held.append(self.top.held.model_calls)
        return super()._generate(messages, stop, run_manager, **kw)


def test_three_level_chain_holds_each_call_once_on_the_top_budget() -> None:
    top = Budget(model_calls=6, model_prices=PRICES, on_exhausted="raise")
    tracker = BudgetTracker(top)
    c_model = Observing(max_tool_turns=1, tool_name="leaf", top=tracker)
    b_model = Observing(max_tool_turns=1, tool_name="ask_c", top=tracker)
    a_model = Observing(max_tool_turns=1, tool_name="ask_b", top=tracker)

    @tool
    def leaf(query: str) -> str:
        """The leaf tool."""
        return "leaf says hi"

    c_agent = with_budget(
        create_react_agent(c_model, [leaf]), Budget(usd=1, model_prices=PRICES, name="C")
    )

    @tool
    def ask_c(query: str) -> str:
        """Ask agent C."""
        return str(c_agent.invoke({"messages": [("user", query)]})["messages"][-1].content)

    b_agent = with_budget(
        create_react_agent(b_model, [ask_c]), Budget(usd=1, model_prices=PRICES, name="B")
    )

    @tool
    def ask_b(query: str) -> str:
        """Ask agent B."""
        return str(b_agent.invoke({"messages": [("user", query)]})["messages"][-1].content)

    a_agent = with_budget(create_react_agent(a_model, [ask_b]), top)
    out = a_agent.invoke(
        {"messages": [("user", "go")]}, {"configurable": {"budget_tracker": tracker}}
    )
    # A: ask_b, answer; B: ask_c, answer; C: leaf, answer: six calls, all paid, none refused.
    assert (a_model.turns, b_model.turns, c_model.turns) == (2, 2, 2)
    assert out["messages"][-1].content.startswith("final answer")
    # While each call ran, the top budget held it once (not once per budgeted level above
    # it, which used up the limit early), and every call is on its books once.
    assert a_model.held + b_model.held + c_model.held == [1] * 6
    assert tracker.spent.model_calls == 6 and tracker.held.model_calls == 0


# --- 5. each model call after a top-up is shown the new remaining -------------------------


@pytest.mark.parametrize("kind", ["with_budget", "middleware"])
def test_each_call_after_a_top_up_is_shown_the_new_remaining(kind: str) -> None:
    calls = collections.Counter[str]()

    @tool
    def validate(query: str) -> str:
        """Validate something."""
        calls["validate"] += 1
        return "valid"

    model = ToolCallingFake(max_tool_turns=10, tool_name="validate")
    budget = Budget(
        usd=5,
        model_calls=2,
        tool_calls={"validate": 1},
        prices={"validate": "0.25"},
        model_prices=PRICES,
        on_exhausted="interrupt",
    )
    if kind == "with_budget":
        agent = with_budget(
            create_react_agent(model, [validate], checkpointer=InMemorySaver()), budget
        )
    else:
        from langchain.agents import create_agent

        from agent_budget import BudgetMiddleware

        agent = create_agent(
            model, [validate], middleware=[BudgetMiddleware(budget)], checkpointer=InMemorySaver()
        )
    cfg: dict[str, Any] = {"configurable": {"thread_id": "topups"}, "recursion_limit": 50}
    out = agent.invoke({"messages": [("user", "go")]}, cfg)
    assert "__interrupt__" in out and model.turns == 2

    for n in (1, 2):
        out = agent.invoke(
            Command(resume={"model_calls": 1, "tool_calls": {"validate": 1}, "usd": "0.25"}), cfg
        )
        assert model.turns == 2 + n
        shown = model.seen[-1][-1]  # what the model saw after the top-up
        assert isinstance(shown, ToolMessage)
        assert "Model Call Budget Remaining: 1" in shown.content, shown.content
        assert "validate Budget Remaining: 1" in shown.content, shown.content
        assert isinstance(out["messages"][-1], AIMessage) or "__interrupt__" in out


# --- exactly-once where LangGraph cannot keep a step's finished calls ---------------------


def test_a_tool_node_reached_by_a_plain_edge_replays_finished_calls_on_resume(
    tmp_path: Path,
) -> None:
    """A ToolNode behind a plain edge runs all of a step's calls in one task, so LangGraph
    drops their results when one interrupts; in the same process the run replays them."""
    runs: collections.Counter[str] = collections.Counter()

    @tool
    def search(query: str) -> str:
        """Search the web."""
        runs[query] += 1
        return f"found {query}"

    @tool
    def approve(what: str) -> str:
        """Ask a person to approve."""
        return f"approved: {interrupt({'approve': what})}"

    model = ScriptedFake(
        script=[
            [("search", {"query": "a"}), ("search", {"query": "b"}), ("approve", {"what": "x"})]
        ]
    )
    bound = model.bind_tools([search, approve])
    g = StateGraph(State)
    g.add_node("llm", lambda state: {"messages": [bound.invoke(state["messages"])]})
    g.add_node("tools", ToolNode([search, approve]))
    g.add_edge(START, "llm")
    g.add_edge("llm", "tools")
    db = tmp_path / "spend.db"
    budget = Budget(usd="0.05", prices={"search": "0.01"}, model_prices=PRICES, ledger=str(db))
    agent = with_budget(g.compile(checkpointer=InMemorySaver()), budget)
    cfg: dict[str, Any] = {"configurable": {"thread_id": "plain-edge"}}
    assert "__interrupt__" in agent.invoke({"messages": [("user", "go")]}, cfg)
    out = agent.invoke(Command(resume="yes"), cfg)

    assert runs == {"a": 1, "b": 1}
    results = [m.content.split("\n\n")[0] for m in out["messages"] if isinstance(m, ToolMessage)]
    assert results == ["found a", "found b", "approved: yes"]
    rows = ledger_rows(db)
    ok = collections.Counter(call_id(r) for r in rows if r["kind"] == "tool")
    assert ok == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 1}
    spend = agent.get_spend(cfg)
    assert spend is not None and spend.tool_calls == {"search": 2, "approve": 1}
    assert committed_usd(rows) == spend.usd


async def test_an_async_retry_of_a_one_task_step_waits_for_siblings_still_running(
    tmp_path: Path,
) -> None:
    """All calls in one task (a plain edge): `asyncio.gather` leaves the searches running
    when `flaky` raises; the node's retry waits for them instead of running them again."""
    runs: collections.Counter[str] = collections.Counter()

    @tool
    async def search(query: str) -> str:
        """Search the web (slow)."""
        runs[query] += 1
        await asyncio.sleep(0.3)
        return f"found {query}"

    @tool
    async def flaky(what: str) -> str:
        """Fails the first time."""
        runs["flaky"] += 1
        if runs["flaky"] == 1:
            raise Flaky("try again")
        return "fine"

    model = ScriptedFake(
        script=[[("search", {"query": "a"}), ("search", {"query": "b"}), ("flaky", {"what": "x"})]]
    )
    bound = model.bind_tools([search, flaky])

    async def llm(state: State) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    retry = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False, retry_on=Flaky)
    g = StateGraph(State)
    g.add_node("llm", llm)
    g.add_node("tools", ToolNode([search, flaky]), retry_policy=retry)
    g.add_edge(START, "llm")
    g.add_edge("llm", "tools")
    db = tmp_path / "spend.db"
    budget = Budget(
        usd=1, prices={"search": "0.01", "flaky": "0.01"}, model_prices=PRICES, ledger=str(db)
    )
    agent = with_budget(g.compile(), budget)
    out = await agent.ainvoke({"messages": [("user", "go")]})
    await asyncio.sleep(0.4)
    assert runs == {"a": 1, "b": 1, "flaky": 2}
    results = [m.content.split("\n\n")[0] for m in out["messages"] if isinstance(m, ToolMessage)]
    assert results == ["found a", "found b", "fine"]
    made = collections.Counter(
        call_id(r) for r in ledger_rows(db) if r["kind"] == "tool" and r["outcome"] != "held"
    )
    assert made == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 2}  # bodies run = rows


# --- 1b. the same, resumed in a new process (the checkpoint and the ledger on disk) -------


_phase = run_phase  # one phase of resume_child.py in a new process


def test_resume_in_a_new_process_runs_and_charges_each_finished_call_once(
    tmp_path: Path,
) -> None:
    """Each call of the step is a task of its own (`budget_condition`), so the calls that
    finished before the interrupt are kept in the checkpoint by LangGraph: the resuming
    process, which shares no memory with the first, neither runs nor charges them again."""
    assert _phase("start", tmp_path, "toolnode") == "interrupted"
    assert _phase("resume", tmp_path, "toolnode").startswith("final")
    runs = (tmp_path / "runs.txt").read_text().splitlines()
    # approve runs again on resume (LangGraph re-runs an interrupted task); searches once.
    assert collections.Counter(runs) == {"search:a": 1, "search:b": 1, "approve": 2}
    rows = ledger_rows(tmp_path / "spend.db")
    ok = collections.Counter(
        call_id(r) for r in rows if r["kind"] == "tool" and r["outcome"] == "ok"
    )
    assert ok == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 1}
    assert committed_usd(rows) <= Decimal("0.05")


def test_a_whole_step_in_one_task_resumed_in_a_new_process_runs_each_call_once(
    tmp_path: Path,
) -> None:
    """One task runs the whole step (a ToolNode inside ``.with_fallbacks``), so LangGraph
    keeps none of its writes when ``approve`` interrupts: the searches that finished are
    replayed from the results the ledger kept with their commits, not run again."""
    assert _phase("start", tmp_path, "fallbacks") == "interrupted"
    assert _phase("resume", tmp_path, "fallbacks").startswith("final")
    rows = ledger_rows(tmp_path / "spend.db")
    ok = collections.Counter(
        call_id(r) for r in rows if r["kind"] == "tool" and r["outcome"] == "ok"
    )
    runs = collections.Counter((tmp_path / "runs.txt").read_text().splitlines())
    assert ok == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 1}
    assert runs == {"search:a": 1, "search:b": 1, "approve": 2}
    tools = [r for r in rows if r["kind"] == "tool"]
    assert committed_usd(tools) == Decimal("0.02")  # two searches, each charged once
    assert committed_usd(rows) <= Decimal("0.05")
