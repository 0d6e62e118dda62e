"""The ledger through a real `with_budget` LangGraph agent: a row per model and tool call,
a user's daily budget shared by all their runs, and no spending when the ledger is down."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, Counter, ToolCallingFake, make_search
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

from agent_budget.budget import Budget
from agent_budget.errors import LedgerUnavailable
from agent_budget.integrations.langgraph import with_budget
from agent_budget.ledger import Ledger, open_ledger

PRICES = {FAKE_MODEL: FAKE_PRICE}
MODEL_CALL = Decimal(100) * Decimal("0.000001") + Decimal(20) * Decimal("0.000002")


def config(user: str, thread: str, **extra: Any) -> dict[str, Any]:
    return {
        "configurable": {"thread_id": thread, "user_id": user, "tenant_id": "acme", **extra},
        "recursion_limit": 100,
    }


def agent(counter: Counter, budget: Budget, tool_turns: int = 2, hook: Any = None) -> Any:
    @tool
    def search(query: str) -> str:
        """Search the web."""
        counter.hit()
        if hook:
            hook()
        return f"result for {query}"

    model = ToolCallingFake(max_tool_turns=tool_turns)
    return with_budget(create_react_agent(model, [search]), budget), model


def test_every_model_and_tool_call_is_a_row(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    budget = Budget(ledger=str(db), prices={"search": "0.01"}, model_prices=PRICES)
    graph, _ = agent(Counter(), budget)
    out = graph.invoke({"messages": [("user", "hi")]}, config("alice", "t1"))

    rows = list(Ledger.open(db).rows())
    models = [r for r in rows if r["kind"] == "model"]
    tools = [r for r in rows if r["kind"] == "tool"]
    assert len(models) == 3 and len(tools) == 2  # 2 tool turns, then the answer
    assert {r["outcome"] for r in rows} == {"ok"}
    assert {(r["user_id"], r["tenant_id"], r["thread_id"]) for r in rows} == {
        ("alice", "acme", "t1")
    }
    assert len({r["run_id"] for r in rows}) == 1
    assert all(r["name"] == FAKE_MODEL and r["node"] == "agent" for r in models)
    assert all(
        (r["input_tokens"], r["output_tokens"], r["usd"]) == (100, 20, MODEL_CALL) for r in models
    )
    assert all(
        r["name"] == "search" and r["usd"] == Decimal("0.01") and r["attempt"] == 1 for r in tools
    )
    # Idempotency keys: run, tool call id, attempt.
    assert [r["call_key"].split(":", 1)[1] for r in tools] == ["call_0#1", "call_1#1"]
    assert Ledger.open(db).spend()[0]["usd"] == 3 * MODEL_CALL + Decimal("0.02")  # exact
    assert out["messages"][-1].content.startswith("final answer")


def test_a_users_daily_budget_is_shared_by_all_their_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "spend.db")
    budget = Budget(
        scope="user", window="1d", usd="0.025", ledger=db,
        prices={"search": "0.01"}, model_prices=PRICES,
    )  # fmt: skip
    counter = Counter()
    graph, _ = agent(counter, budget, tool_turns=10)
    graph.invoke({"messages": [("user", "hi")]}, config("alice", "t1"))
    first = counter.n
    graph.invoke({"messages": [("user", "again")]}, config("alice", "t2"))  # a new thread
    assert first == 2 and counter.n == first  # alice's day is spent: no more searches
    graph.invoke({"messages": [("user", "hi")]}, config("bob", "t3"))
    assert counter.n == first + 2  # bob has his own day

    ledger = Ledger.open(db)
    spent = {r["user"]: r for r in ledger.spend(by="user")}
    assert spent["alice"]["usd"] <= Decimal("0.025") and spent["bob"]["usd"] <= Decimal("0.025")
    assert spent["alice"]["refused"] >= 2  # the refused searches are on record
    refused = [r for r in ledger.rows() if r["outcome"] == "refused" and r["user_id"] == "alice"]
    # Most by the shared limit; a thread's own copy of the limit may refuse first.
    assert "user.usd" in {r["detail"] for r in refused} <= {"user.usd", "thread budget"}


def test_a_user_scoped_budget_without_a_user_is_refused(tmp_path: Path) -> None:
    budget = Budget(scope="user", usd=1, ledger=str(tmp_path / "s.db"), model_prices=PRICES)
    graph, model = agent(Counter(), budget)
    with pytest.raises(Exception, match="needs the run's user"):
        graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t"}})
    assert model.turns == 0


def test_no_spending_when_the_ledger_cannot_record(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    db.write_bytes(b"definitely not a database " * 200)
    budget = Budget(ledger=str(db), prices={"search": "0.01"}, model_prices=PRICES)
    counter = Counter()
    graph, model = agent(counter, budget)
    with pytest.raises(LedgerUnavailable, match="not a usable SQLite database"):
        graph.invoke({"messages": [("user", "hi")]}, config("alice", "t1"))
    assert model.turns == 0 and counter.n == 0


def test_a_ledger_locked_mid_run_stops_the_run(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    ledger = open_ledger(db)  # the process-wide instance the run will use
    ledger._conn.execute("PRAGMA busy_timeout = 200")  # type: ignore[attr-defined]
    hog = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

    def another_process_takes_the_lock() -> None:
        hog.execute("BEGIN IMMEDIATE")

    budget = Budget(ledger=str(db), prices={"search": "0.01"}, model_prices=PRICES)
    counter = Counter()
    graph, model = agent(counter, budget, hook=another_process_takes_the_lock)
    with pytest.raises(LedgerUnavailable, match="is locked"):
        graph.invoke({"messages": [("user", "hi")]}, config("alice", "t1"))
    assert counter.n == 1 and model.turns == 1  # nothing ran after the ledger stopped recording
    hog.execute("ROLLBACK")
    hog.close()
    outcomes = [(r["kind"], r["outcome"]) for r in Ledger.open(db).rows()]
    assert outcomes == [("model", "ok"), ("tool", "held")]  # the search's cost is visible


def test_middleware_runs_are_on_the_ledger_too(tmp_path: Path) -> None:
    from langchain.agents import create_agent

    from agent_budget.integrations.langchain import BudgetMiddleware

    db = tmp_path / "mw.db"
    counter, model = Counter(), ToolCallingFake(max_tool_turns=2)
    budget = Budget(
        prices={"search": "0.01"}, model_prices={FAKE_MODEL: FAKE_PRICE}, ledger=str(db)
    )
    agent = create_agent(model, [make_search(counter)], middleware=[BudgetMiddleware(budget)])
    agent.invoke(
        {"messages": [("user", "go")]},
        {"configurable": {"thread_id": "mw", "user_id": "bob"}, "recursion_limit": 50},
    )
    rows = list(Ledger.open(db).rows())
    assert sorted(r["kind"] for r in rows) == ["model"] * 3 + ["tool"] * 2
    assert {r["user_id"] for r in rows} == {"bob"}


def test_the_model_sees_what_is_left_of_the_shared_limit_that_will_stop_it(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "spend.db")
    budget = Budget(
        scope="user", window="1d", usd="0.025", ledger=db,
        prices={"search": "0.01"}, model_prices=PRICES,
    )  # fmt: skip
    graph, model = agent(Counter(), budget, tool_turns=1)
    graph.invoke({"messages": [("user", "hi")]}, config("alice", "t1"))
    graph, model = agent(Counter(), budget, tool_turns=1)
    graph.invoke({"messages": [("user", "again")]}, config("alice", "t2"))
    # The second thread's model is shown alice's day after its search: $0.025 less the
    # first thread (2 model calls, 1 search) and its own model call and search so far.
    shown = [m.content for m in model.seen[-1] if m.type == "tool"]
    left = Decimal("0.025") - 3 * MODEL_CALL - Decimal("0.02")
    assert left == Decimal("0.00458")
    assert shown and shown[-1].endswith(
        "<budget>USD Used: 0.0101, USD Remaining (user 'alice', 1d): 0.0045</budget>"
    ), shown
