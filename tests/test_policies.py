"""Budget policies: nested budgets, soft limits, guards, exactly-once charging, honest prices."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Annotated, Any, TypedDict

import pytest
from fakes import FAKE_MODEL, FAKE_PRICE, Counter, ToolCallingFake, make_search
from langchain.agents import create_agent
from langchain_core.messages import AnyMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
from langgraph.types import Command, RetryPolicy, interrupt

from agent_budget import Budget, BudgetExceeded, BudgetTracker, InvalidBudget, with_budget
from agent_budget.integrations.langchain import BudgetMiddleware
from agent_budget.pricing import PriceBook

PRICES: dict[str, Any] = {FAKE_MODEL: FAKE_PRICE}
CFG: dict[str, Any] = {"recursion_limit": 200}


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- nested budgets -----------------------------------------------------------------------


def test_child_stops_at_its_limit_while_the_parent_goes_on() -> None:
    parent = BudgetTracker(Budget(usd="1.00", prices={"s": "0.05"}, name="run"))
    child = parent.child("research", usd="0.20")
    n = 0
    while (res := child.try_reserve(child.tool_charge("s"))) is not None:
        res.commit()
        n += 1
    assert n == 4 and child.spent.usd == Decimal("0.20")
    assert parent.try_reserve(parent.tool_charge("s")) is not None  # the parent goes on


def test_tree_totals_are_exact_sums_of_their_leaves() -> None:
    root = BudgetTracker(Budget(usd=10, prices={"a": "0.1", "b": "0.2", "c": "0.3"}, name="run"))
    research = root.child("research", usd=5)
    deep = research.child("deep", usd=2)
    writer = root.child("writer", usd=2)
    for t, tool_name, times in (
        (root, "a", 3),
        (research, "b", 2),
        (deep, "c", 4),
        (writer, "a", 7),
    ):
        for _ in range(times):
            t.reserve(t.tool_charge(tool_name)).commit()
    tree = root.tree()
    assert tree.spent.usd == Decimal("0.3") + Decimal("0.4") + Decimal("1.2") + Decimal("0.7")
    by_name = {c.name: c for c in tree.children}
    assert by_name["research"].spent.usd == Decimal("1.6")
    assert by_name["research"].own.usd == Decimal("0.4")
    assert by_name["research"].children[0].spent.usd == Decimal("1.2")
    leaves = tree.own.usd + by_name["writer"].spent.usd + Decimal("0.4") + Decimal("1.2")
    assert tree.spent.usd == leaves
    # The tree survives a snapshot (a resumed thread keeps it).
    again = BudgetTracker.restore(root.budget, root.snapshot())
    assert again.tree().to_dict()["children"] == tree.to_dict()["children"]


def test_parallel_children_never_together_exceed_the_parent() -> None:
    parent = BudgetTracker(Budget(usd="1.00", prices={"s": "0.01"}))
    kids = [parent.child(f"k{i}", usd="0.60") for i in range(2)]

    def spend(t: BudgetTracker) -> int:
        n = 0
        while (res := t.try_reserve(t.tool_charge("s"))) is not None:
            res.commit()
            n += 1
        return n

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(spend, kids))
    assert sum(counts) == 100 and parent.spent.usd == Decimal("1.00")
    assert all(k.spent.usd <= Decimal("0.60") for k in kids)


def test_a_child_larger_than_its_parent_is_a_clear_error() -> None:
    with pytest.raises(InvalidBudget, match=r"child 'research'\.usd: 2 is more than"):
        Budget(usd=1).child("research", usd=2)
    with pytest.raises(InvalidBudget, match=r"tool_calls\.search"):
        Budget(tool_calls={"search": 3}, prices={"search": 0.01}).child(
            "x", tool_calls={"search": 4}
        )


def test_sub_agent_called_as_a_tool_spends_from_the_parent_graph() -> None:
    sub_counter, sub_model = Counter(), ToolCallingFake(max_tool_turns=100)
    parent_budget = Budget(
        usd="1.00", prices={"search": "0.05", "research": "0"}, model_prices=PRICES, name="run"
    )
    child_budget = parent_budget.child("research", usd="0.20")
    sub_agent = with_budget(create_react_agent(sub_model, [make_search(sub_counter)]), child_budget)

    @tool
    def research(query: str) -> str:
        """Research a topic with a sub-agent."""
        out = sub_agent.invoke({"messages": [("user", query)]}, {"recursion_limit": 100})
        return out["messages"][-1].content

    top_counter, top_model = Counter(), ToolCallingFake(tool_name="research", max_tool_turns=1)
    top = with_budget(
        create_react_agent(top_model, [research, make_search(top_counter)]), parent_budget
    )
    tracker = BudgetTracker(parent_budget)
    top.invoke({"messages": [("user", "go")]}, {**CFG, "configurable": {"budget_tracker": tracker}})

    (child,) = tracker.children
    assert child.name == "research"
    assert child.spent.usd <= Decimal("0.20")
    assert sub_counter.n == 3  # 3 x $0.05 + its model calls fit $0.20; a 4th would not
    assert tracker.spent.usd == child.spent.usd + tracker.tree().own.usd  # exact


def test_two_budgeted_subgraphs_fanned_out_in_parallel_stay_within_the_parent() -> None:
    parent_budget = Budget(usd="0.30", prices={"search": "0.05"}, model_prices=PRICES, name="run")
    counters = {name: Counter() for name in ("a", "b")}
    g = StateGraph(State)
    for name in ("a", "b"):
        model = ToolCallingFake(max_tool_turns=100)
        sub = with_budget(
            create_react_agent(model, [make_search(counters[name])], name=name),
            parent_budget.child(name, usd="0.20"),
        )
        g.add_node(name, sub)
        g.add_edge(START, name)
    top = with_budget(g, parent_budget, final_model=ToolCallingFake())
    tracker = BudgetTracker(parent_budget)
    top.invoke({"messages": [("user", "go")]}, {**CFG, "configurable": {"budget_tracker": tracker}})
    assert tracker.spent.usd <= Decimal("0.30")
    assert {c.name for c in tracker.children} == {"a", "b"}
    assert all(c.spent.usd <= Decimal("0.20") for c in tracker.children)
    assert counters["a"].n + counters["b"].n == 5  # $0.30 of $0.05 searches, minus model calls


# --- soft limits --------------------------------------------------------------------------


def test_each_warn_at_threshold_fires_once() -> None:
    seen: list[float] = []
    t = BudgetTracker(Budget(usd=1, prices={"s": "0.1"}, warn_at=[0.5, 0.8]))
    t.add_warning_listener(lambda _t, threshold, _text: seen.append(threshold))
    for _ in range(10):
        t.reserve(t.tool_charge("s")).commit()
    assert seen == [0.5, 0.8]
    again = BudgetTracker.restore(t.budget, t.snapshot())  # resumed: not fired again
    again.add_warning_listener(lambda _t, threshold, _text: seen.append(threshold))
    again.top_up(usd=1)
    again.reserve(again.tool_charge("s")).commit()
    assert seen == [0.5, 0.8]


def test_warnings_reach_the_callback_and_the_custom_stream() -> None:
    counter, model = Counter(), ToolCallingFake(max_tool_turns=100)
    got: list[float] = []
    agent = with_budget(
        create_react_agent(model, [make_search(counter)]),
        Budget(usd="0.10", prices={"search": "0.01"}, model_prices=PRICES, warn_at=[0.5, 0.9]),
        on_warning=lambda threshold, _text: got.append(threshold),
    )
    events = [
        chunk
        for chunk in agent.stream({"messages": [("user", "go")]}, CFG, stream_mode="custom")
        if isinstance(chunk, dict) and chunk.get("agent_budget") == "warning"
    ]
    assert got == [0.5, 0.9]
    assert [e["threshold"] for e in events] == [0.5, 0.9]
    assert "Budget Regime:" in events[0]["message"]


def test_downgrade_finishes_on_the_cheaper_model_and_records_the_switch() -> None:
    expensive = ToolCallingFake(model_name="big-model", max_tool_turns=8)
    cheap = ToolCallingFake(model_name="small-model", max_tool_turns=8)
    budget = Budget(
        usd="0.05",
        prices={"search": "0.001"},
        model_prices={
            "big-model": {"input": 50, "output": 100},  # $0.007 a call: 7 calls would not fit
            "small-model": {"input": 0.1, "output": 0.2},
        },
        downgrade={"model": "small-model", "at": 0.6},
    )
    counter = Counter()
    agent = create_agent(
        expensive,
        [make_search(counter)],
        middleware=[BudgetMiddleware(budget, models={"small-model": cheap})],
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "down"}, "recursion_limit": 100}
    out = agent.invoke({"messages": [("user", "go")]}, cfg)
    assert out["messages"][-1].content.startswith("final")
    assert cheap.turns > 0 and expensive.turns > 0
    state = agent.get_state(cfg).values["agent_budget"]
    (event,) = [e for e in state["events"] if e["type"] == "downgrade"]
    assert event["to"] == "small-model" and "left" in event["reason"]
    assert Decimal(state["spent"]["usd"]) <= Decimal("0.05")
    # It finished its work on the cheaper model, not in a budget-forced final answer.
    assert out["messages"][-1].response_metadata["model_name"] == "small-model"
    assert not any("budget is exhausted" in str(m.content) for seen in cheap.seen for m in seen)


def test_a_downgrade_model_with_no_price_is_a_clear_error() -> None:
    budget = Budget(usd=1, downgrade={"model": "nameless-cheap", "at": "LOW"})
    with pytest.raises(InvalidBudget, match=r"budget\.downgrade\.model"):
        BudgetMiddleware(budget, models={"nameless-cheap": ToolCallingFake(model_name="zzz-9")})


# --- guards -------------------------------------------------------------------------------


def test_loop_guard_stops_a_model_repeating_the_same_call() -> None:
    counter, model = Counter(), ToolCallingFake(same_args=True, max_tool_turns=100)
    agent = with_budget(
        create_react_agent(model, [make_search(counter)]),
        Budget(model_prices=PRICES, guards={"repeat_calls": 3}, on_exhausted="raise"),
    )
    with pytest.raises(BudgetExceeded, match="loop guard"):
        agent.invoke({"messages": [("user", "go")]}, CFG)
    assert counter.n == 3


def test_idle_guard_stops_steps_that_bring_nothing_new() -> None:
    counter, model = Counter(), ToolCallingFake(same_args=True, max_tool_turns=100)
    agent = with_budget(
        create_react_agent(model, [make_search(counter)]),
        Budget(model_prices=PRICES, guards={"idle_steps": 2}),
    )
    out = agent.invoke({"messages": [("user", "go")]}, CFG)
    assert counter.n == 3  # a new result, then two steps that repeat it
    assert out["messages"][-1].content.startswith("final")


def test_spend_rate_cap_holds_in_a_tight_loop() -> None:
    clock = Clock()
    t = BudgetTracker(Budget(prices={"s": "0.01"}, guards={"usd_per_minute": "0.10"}), clock=clock)

    def burst() -> int:
        n = 0
        while (res := t.try_reserve(t.tool_charge("s"))) is not None:
            res.commit()
            n += 1
        return n

    assert burst() == 10
    clock.now = 30
    assert burst() == 0
    clock.now = 61
    assert burst() == 10
    assert t.spent.usd == Decimal("0.20")


def test_spend_rate_cap_holds_under_threads() -> None:
    t = BudgetTracker(Budget(prices={"s": "0.01"}, guards={"usd_per_minute": "0.50"}))
    ok = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(40):
            res = t.try_reserve(t.tool_charge("s"))
            if res is not None:
                res.commit()
                with lock:
                    ok.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(ok) == 50


# --- exactly once -------------------------------------------------------------------------


def test_interrupt_inside_a_tool_then_resume_charges_each_call_once(tmp_path: Any) -> None:
    from agent_budget.ledger import Ledger

    runs = Counter()

    @tool
    def search(query: str) -> str:
        """Search."""
        runs.hit()
        return f"result {query}"

    @tool
    def ask_human(question: str) -> str:
        """Ask a person."""
        return str(interrupt({"question": question}))

    class TwoTools(ToolCallingFake):
        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Any:
            from langchain_core.messages import AIMessage
            from langchain_core.outputs import ChatGeneration, ChatResult

            self.turns += 1
            usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
            if kw.get("tools") and self.turns == 1:
                calls = [
                    {"name": "search", "args": {"query": "a"}, "id": "call_s"},
                    {"name": "ask_human", "args": {"question": "ok?"}, "id": "call_h"},
                ]
                msg = AIMessage(content="", tool_calls=calls, usage_metadata=usage)
            else:
                msg = AIMessage(content="final", usage_metadata=usage)
            msg.response_metadata["model_name"] = FAKE_MODEL
            return ChatResult(generations=[ChatGeneration(message=msg)])

    db = tmp_path / "once.db"
    budget = Budget(
        prices={"search": "0.01", "ask_human": "0.02"}, model_prices=PRICES, ledger=str(db)
    )
    agent = with_budget(
        create_react_agent(TwoTools(), [search, ask_human], checkpointer=InMemorySaver()), budget
    )
    cfg = {"configurable": {"thread_id": "once"}, "recursion_limit": 50}
    out = agent.invoke({"messages": [("user", "go")]}, cfg)
    assert "__interrupt__" in out
    out = agent.invoke(Command(resume="yes"), cfg)
    assert out["messages"][-1].content == "final"
    rows = [r for r in Ledger.open(db).rows() if r["kind"] == "tool" and r["outcome"] == "ok"]
    per_call: dict[str, int] = {}
    for r in rows:
        call_id = r["call_key"].split(":", 1)[1].split("#")[0]
        per_call[call_id] = per_call.get(call_id, 0) + 1
    assert per_call == {"call_s": 1, "call_h": 1}
    assert runs.n == 1
    spend = agent.get_spend(cfg)
    assert spend is not None and spend.tool_calls == {"search": 1, "ask_human": 1}


def test_retry_policy_rerun_does_not_charge_completed_calls_again() -> None:
    ran = Counter()
    flaky_runs = Counter()

    @tool
    def search(query: str) -> str:
        """Search."""
        ran.hit()
        return "ok"

    @tool
    def flaky(query: str) -> str:
        """Fails the first time."""
        if flaky_runs.hit() == 1:
            raise ConnectionError("transient")
        return "ok"

    class Both(ToolCallingFake):
        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Any:
            from langchain_core.messages import AIMessage
            from langchain_core.outputs import ChatGeneration, ChatResult

            self.turns += 1
            usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
            calls = [
                {"name": "search", "args": {"query": "x"}, "id": "c1"},
                {"name": "flaky", "args": {"query": "y"}, "id": "c2"},
            ]
            msg = (
                AIMessage(content="", tool_calls=calls, usage_metadata=usage)
                if self.turns == 1
                else AIMessage(content="final", usage_metadata=usage)
            )
            msg.response_metadata["model_name"] = FAKE_MODEL
            return ChatResult(generations=[ChatGeneration(message=msg)])

    model = Both().bind_tools([search, flaky])
    g = StateGraph(State)
    g.add_node("llm", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_node(
        "tools",
        ToolNode([search, flaky], handle_tool_errors=False),
        retry_policy=RetryPolicy(max_attempts=2, initial_interval=0, retry_on=ConnectionError),
    )
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", tools_condition)
    g.add_edge("tools", "llm")
    budget = Budget(prices={"search": "0.01", "flaky": "0.10"}, model_prices=PRICES)
    agent = with_budget(g, budget, final_model=Both())
    tracker = BudgetTracker(budget)
    agent.invoke(
        {"messages": [("user", "go")]}, {**CFG, "configurable": {"budget_tracker": tracker}}
    )
    # The node ran twice; search, already done and paid for, was not run again (its result
    # was replayed), while flaky's failed attempt and its retry are two paid attempts.
    assert ran.n == 1 and flaky_runs.n == 2
    assert tracker.spent.tool_calls == {"search": 1, "flaky": 2}
    assert tracker.spent.usd == Decimal("0.21") + 2 * PriceBook(budget).model_cost(
        FAKE_MODEL, 10, 5
    )


# --- honest prices ------------------------------------------------------------------------


def test_unpriced_model_allowed_when_not_strict_and_never_shown_as_free() -> None:
    counter, model = Counter(), ToolCallingFake(model_name="mystery-model-9000", max_tool_turns=1)
    agent = with_budget(
        create_react_agent(model, [make_search(counter)]),
        Budget(strict_prices=False, tool_calls={"search": 5}, prices={"search": "0.01"}),
    )
    tracker = BudgetTracker(agent.budget)  # type: ignore[arg-type]
    agent.invoke(
        {"messages": [("user", "go")]}, {**CFG, "configurable": {"budget_tracker": tracker}}
    )
    assert tracker.spent.unpriced == {"mystery-model-9000": 2}
    assert tracker.spent.usd == Decimal("0.01")
    assert "Unpriced Calls: 2 (mystery-model-9000)" in tracker.message()


def test_price_aliases_and_cycles() -> None:
    book = PriceBook(Budget(price_aliases={"my-finetune": "gpt-4o-mini"}))
    price = book.model_price("my-finetune")
    assert price.source == "litellm (alias of gpt-4o-mini)"
    assert price.input_per_token == book.model_price("gpt-4o-mini").input_per_token
    with pytest.raises(InvalidBudget, match="cycle a -> b -> a"):
        Budget.from_dict({"price_aliases": {"a": "b", "b": "a"}})


def test_cached_input_tokens_are_priced_apart() -> None:
    book = PriceBook(Budget(model_prices={"m": {"input": 2, "output": 8, "cached_input": 0.5}}))
    price = book.model_price("m")
    assert price.cost(1000, 100, cached_input_tokens=400) == Decimal("0.0012") + Decimal(
        "0.0002"
    ) + Decimal("0.0008")
    litellm = book.model_price("gpt-4o-mini")
    assert litellm.cached_input_per_token is not None
    assert litellm.cached_input_per_token < litellm.input_per_token


def test_snapshot_is_json_safe_with_every_policy_state() -> None:
    t = BudgetTracker(Budget(usd=1, prices={"s": "0.3"}, warn_at=[0.5], name="run"))
    t.child("kid", usd="0.5").reserve(t.tool_charge("s")).commit()
    t.record_event("downgrade", to="x", reason="test")
    json.dumps(t.snapshot())


def test_spend_tree_renders_for_people() -> None:
    from rich.console import Console

    from agent_budget.render import spend_tree

    root = BudgetTracker(Budget(usd=1, prices={"s": "0.05"}, name="run"))
    research = root.child("research", usd="0.5")
    research.child("deep", usd="0.2").reserve(root.tool_charge("s")).commit()
    console = Console(record=True, width=80)
    console.print(spend_tree(root.tree()))
    text = console.export_text()
    assert "run: $0.0500" in text and "research: $0.0500" in text and "deep: $0.0500" in text


def test_prices_show_names_the_source(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from agent_budget.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["prices", "show", "gpt-4o-mini"])
    assert out.exit_code == 0 and "[litellm]" in out.stdout and "cached" in out.stdout
    budget = tmp_path / "b.yaml"
    budget.write_text("price_aliases: {my-ft: gpt-4o-mini}\n")
    out = runner.invoke(app, ["prices", "show", "my-ft", "--budget", str(budget)])
    assert out.exit_code == 0 and "alias of gpt-4o-mini" in out.stdout
    out = runner.invoke(app, ["prices", "show", "no-such-model-zz"])
    assert out.exit_code == 2 and "never assumes $0" in out.stderr


def test_create_agent_sub_agent_with_middleware_spends_from_the_calling_run() -> None:
    run_budget = Budget(usd="1.00", prices={"search": "0.05"}, model_prices=PRICES, name="run")
    sub_counter = Counter()
    sub_agent = create_agent(
        ToolCallingFake(max_tool_turns=100),
        [make_search(sub_counter)],
        middleware=[BudgetMiddleware(run_budget.child("helper", usd="0.12"))],
    )

    @tool
    def delegate(query: str) -> str:
        """Hand a question to a helper agent."""
        out = sub_agent.invoke({"messages": [("user", query)]}, {"recursion_limit": 100})
        return str(out["messages"][-1].content)

    top = with_budget(
        create_react_agent(ToolCallingFake(tool_name="delegate", max_tool_turns=1), [delegate]),
        run_budget,
    )
    tracker = BudgetTracker(run_budget)
    top.invoke({"messages": [("user", "go")]}, {**CFG, "configurable": {"budget_tracker": tracker}})
    (child,) = tracker.children
    assert child.name == "helper" and child.spent.usd <= Decimal("0.12")
    assert sub_counter.n == 2  # $0.10 of searches + its model calls fit $0.12; a third not
    assert tracker.spent.usd == child.spent.usd + tracker.tree().own.usd


def test_the_ledger_shows_which_sub_budget_spent_what(tmp_path: Any) -> None:
    from agent_budget.ledger import Ledger
    from agent_budget.ledger.attach import attach_ledger

    db = tmp_path / "tree.db"
    root = BudgetTracker(Budget(usd=1, prices={"s": "0.05"}, name="run", ledger=str(db)))
    attach_ledger(root, {"configurable": {"thread_id": "t"}})
    deep = root.child("research", usd="0.5").child("deep", usd="0.2")
    deep.reserve(deep.tool_charge("s", node="tools")).commit()
    root.reserve(root.tool_charge("s", node="tools")).commit()
    by_node = {r["node"]: r for r in Ledger.open(db).spend(by="node")}
    assert set(by_node) == {"research/deep/tools", "tools"}
    assert by_node["research/deep/tools"]["usd"] == Decimal("0.05")
    assert root.by_node["research/deep/tools"].usd == Decimal("0.05")


def test_with_budget_downgrades_through_a_budget_router_reading_the_run_regime() -> None:
    from agent_budget.integrations.langgraph import current_regime
    from agent_budget.models import BudgetRouter

    cheap = ToolCallingFake(model_name="small-model", max_tool_turns=6)
    expensive = ToolCallingFake(model_name="big-model", max_tool_turns=6)
    router = BudgetRouter(
        cheap=cheap,
        expensive=expensive,
        strategy="score",
        difficulty_threshold=0.0,  # the expensive model unless money is short
        regime=current_regime,
    )
    budget = Budget(
        usd="0.10",
        prices={"search": "0.01"},
        model_prices={
            "big-model": {"input": 50, "output": 100},  # $0.007 a call
            "small-model": {"input": 0.1, "output": 0.2},
        },
    )
    counter = Counter()
    agent = with_budget(create_react_agent(router, [make_search(counter)]), budget)
    tracker = BudgetTracker(budget)
    agent.invoke(
        {"messages": [("user", "hard question " * 50)]},
        {**CFG, "configurable": {"budget_tracker": tracker}},
    )
    regimes = [d.regime for d in router.decisions]
    tiers = [d.tier for d in router.decisions]
    assert "expensive" in tiers and tiers[-1] == "cheap"
    assert any(r in ("LOW", "CRITICAL") for r in regimes if r)
    assert tracker.spent.usd <= Decimal("0.10")


def test_fits_asks_the_parents_too() -> None:
    parent = BudgetTracker(Budget(usd="0.10", prices={"s": "0.05"}))
    child = parent.child("kid", usd="0.10")
    parent.reserve(parent.tool_charge("s")).commit()
    parent.reserve(parent.tool_charge("s")).commit()
    assert not child.fits(child.tool_charge("s"))  # the child has room, its parent does not


def test_cli_spend_draws_a_checkpointed_threads_tree(tmp_path: Any) -> None:
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver
    from typer.testing import CliRunner

    from agent_budget.cli import app

    db = tmp_path / "checkpoints.sqlite"
    run_budget = Budget(usd="1.00", prices={"search": "0.05"}, model_prices=PRICES, name="run")
    sub = with_budget(
        create_react_agent(ToolCallingFake(max_tool_turns=2), [make_search(Counter())]),
        run_budget.child("research", usd="0.20"),
    )

    @tool
    def research(query: str) -> str:
        """Research with a sub-agent."""
        return str(sub.invoke({"messages": [("user", query)]})["messages"][-1].content)

    conn = sqlite3.connect(db, check_same_thread=False)
    top = with_budget(
        create_react_agent(
            ToolCallingFake(tool_name="research", max_tool_turns=1),
            [research],
            checkpointer=SqliteSaver(conn),
        ),
        run_budget,
    )
    top.invoke({"messages": [("user", "go")]}, {"configurable": {"thread_id": "t1"}, **CFG})
    conn.close()

    runner = CliRunner()
    out = runner.invoke(app, ["spend", "t1", "--checkpoints", str(db)])
    assert out.exit_code == 0, out.output
    assert "research: $0.1" in out.stdout and "t1: $0.1" in out.stdout
    out = runner.invoke(app, ["spend", "nope", "--checkpoints", str(db)])
    assert out.exit_code == 1 and "no budget state" in out.stderr
    out = runner.invoke(app, ["spend", "t1", "--checkpoints", str(tmp_path / "missing.db")])
    assert out.exit_code == 2
