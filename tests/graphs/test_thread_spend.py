"""The spend on a checkpointed thread, however the run is driven and wherever it stops.

Real SQLite checkpointers (``SqliteSaver`` / ``AsyncSqliteSaver``) and a real SQLite ledger;
only the chat model is a fake.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedChat
from harness import NotesState, budget, subgraph_of_two_calls
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from agent_budget import BudgetExceeded, get_spend, with_budget
from agent_budget.ledger import Ledger

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _no_ambient_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_BUDGET_LEDGER", raising=False)


def _drive(graph: Any, how: str, value: Any, cfg: dict[str, Any]) -> None:
    if how == "invoke":
        graph.invoke(value, cfg)
    elif how == "stream":
        for _ in graph.stream(value, cfg, stream_mode="updates"):
            pass
    elif how == "ainvoke":
        asyncio.run(graph.ainvoke(value, cfg))
    else:

        async def go() -> None:
            async for _ in graph.astream(value, cfg, stream_mode="updates"):
                pass

        asyncio.run(go())


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_a_raise_keeps_its_spend_on_a_sqlite_thread(how: str, tmp_path: Path) -> None:
    """Sync ``stream()`` as well as ``invoke()``: the spend of a run that raised is on the
    thread, and a resume cannot pass the cap."""
    llm = ScriptedChat(answer="text")
    conn = sqlite3.connect(tmp_path / "threads.db", check_same_thread=False)
    graph = with_budget(
        subgraph_of_two_calls(llm).compile(checkpointer=SqliteSaver(conn)),
        budget(model_calls=2, on_exhausted="raise"),
    )
    cfg: dict[str, Any] = {"configurable": {"thread_id": uuid.uuid4().hex}}
    with pytest.raises(BudgetExceeded):
        _drive(graph, how, {"messages": [("user", "go")]}, cfg)
    spend = get_spend(graph, cfg)
    assert spend is not None and spend.model_calls == 2
    with pytest.raises(BudgetExceeded):
        _drive(graph, how, None, cfg)  # the failed node runs again: still refused
    assert llm.model_calls == 2
    conn.close()


@pytest.mark.parametrize("how", ["ainvoke", "astream"])
def test_a_raise_keeps_its_spend_on_an_async_sqlite_thread(how: str, tmp_path: Path) -> None:
    llm = ScriptedChat(answer="text")
    cfg: dict[str, Any] = {"configurable": {"thread_id": uuid.uuid4().hex}}

    async def scenario() -> None:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "threads.db")) as saver:
            graph = with_budget(
                subgraph_of_two_calls(llm).compile(checkpointer=saver),
                budget(model_calls=2, on_exhausted="raise"),
            )
            for value in ({"messages": [("user", "go")]}, None):
                with pytest.raises(BudgetExceeded):
                    if how == "ainvoke":
                        await graph.ainvoke(value, cfg)
                    else:
                        async for _ in graph.astream(value, cfg):
                            pass
                snap = await saver.aget_tuple({"configurable": cfg["configurable"]})
                assert snap is not None
            assert (await graph.aget_state(cfg)).values.get("notes") == ["text"]

    asyncio.run(scenario())
    assert llm.model_calls == 2


# --- exactly-once for tools a function node calls itself ----------------------------------


def _approval_graph(bodies: collections.Counter[str], checkpointer: Any) -> Any:
    """A node that looks things up with ``tool.invoke`` (once with a tool call, once with
    plain input), then asks a person before it answers: on resume LangGraph runs the whole
    node again."""

    @tool
    def search(query: str) -> str:
        """Search the web."""
        bodies[query] += 1
        return f"found {query}"

    def research(state: NotesState) -> dict[str, Any]:
        first = search.invoke(
            {"name": "search", "args": {"query": "a"}, "id": "c1", "type": "tool_call"}
        )
        second = search.invoke({"query": "b"})
        verdict = interrupt({"approve": [first.content, second]})
        return {"messages": [AIMessage(content=f"{verdict}: {first.content}, {second}")]}

    g = StateGraph(NotesState)
    g.add_node("research", research)
    g.add_edge(START, "research")
    return g.compile(checkpointer=checkpointer)


def _approval_run(
    tmp_path: Path, bodies: collections.Counter[str], searches: int
) -> tuple[Any, sqlite3.Connection, Path, dict[str, Any]]:
    """The approval graph on a SqliteSaver thread and a SQLite ledger, ``searches`` allowed."""
    db = tmp_path / "spend.db"
    conn = sqlite3.connect(tmp_path / "threads.db", check_same_thread=False)
    graph = with_budget(
        _approval_graph(bodies, SqliteSaver(conn)),
        budget(
            tool_calls={"search": searches},
            prices={"search": 0.01},
            ledger=str(db),
            on_exhausted="raise",
        ),
    )
    return graph, conn, db, {"configurable": {"thread_id": uuid.uuid4().hex}}


def _ok_tool_rows(db: Path) -> list[Any]:
    return [r for r in Ledger.open(db).rows() if r["kind"] == "tool" and r["outcome"] == "ok"]


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_tools_a_function_node_runs_again_on_resume_are_charged_again(
    how: str, tmp_path: Path
) -> None:
    bodies: collections.Counter[str] = collections.Counter()
    graph, conn, db, cfg = _approval_run(tmp_path, bodies, searches=4)
    _drive(graph, how, {"messages": [("user", "go")]}, cfg)
    assert graph.get_state(cfg).interrupts
    spend = get_spend(graph, cfg)
    assert spend is not None and spend.tool_calls == {"search": 2}  # kept through the interrupt
    # The resume runs the node again from its start, and with it each tool body: that is
    # spend the provider bills, so the books show it (one ledger row per body run).
    _drive(graph, how, Command(resume="ok"), cfg)
    out = graph.get_state(cfg).values
    assert out["messages"][-1].content == "ok: found a, found b"
    assert bodies == {"a": 2, "b": 2}
    rows = _ok_tool_rows(db)
    assert len(rows) == sum(bodies.values()) == 4
    assert len({r["call_key"] for r in rows}) == 4
    spend = get_spend(graph, cfg)
    assert spend is not None and spend.tool_calls == {"search": 4}
    conn.close()


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_a_resume_that_cannot_pay_for_the_rerun_is_refused_before_the_body(
    how: str, tmp_path: Path
) -> None:
    bodies: collections.Counter[str] = collections.Counter()
    graph, conn, db, cfg = _approval_run(tmp_path, bodies, searches=2)
    _drive(graph, how, {"messages": [("user", "go")]}, cfg)
    with pytest.raises(BudgetExceeded):
        _drive(graph, how, Command(resume="ok"), cfg)
    assert bodies == {"a": 1, "b": 1}  # the re-run's first body was refused before it ran
    assert len(_ok_tool_rows(db)) == sum(bodies.values()) == 2
    spend = get_spend(graph, cfg)
    assert spend is not None and spend.tool_calls == {"search": 2}
    conn.close()


def test_tools_a_function_node_runs_again_on_resume_are_charged_again_async(
    tmp_path: Path,
) -> None:
    bodies: collections.Counter[str] = collections.Counter()
    db = tmp_path / "spend.db"
    cfg: dict[str, Any] = {"configurable": {"thread_id": uuid.uuid4().hex}}

    async def scenario() -> None:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "threads.db")) as saver:
            graph = with_budget(
                _approval_graph(bodies, saver),
                budget(
                    tool_calls={"search": 4},
                    prices={"search": 0.01},
                    ledger=str(db),
                    on_exhausted="raise",
                ),
            )
            await graph.ainvoke({"messages": [("user", "go")]}, cfg)
            assert (await graph.aget_state(cfg)).interrupts
            out = await graph.ainvoke(Command(resume="ok"), cfg)
            assert out["messages"][-1].content == "ok: found a, found b"

    asyncio.run(scenario())
    assert bodies == {"a": 2, "b": 2}
    rows = _ok_tool_rows(db)
    assert len(rows) == sum(bodies.values()) == 4  # each body run is one ledger row
    assert len({r["call_key"] for r in rows}) == 4
