"""planner_node replans on every event type of the planning format (``invalidate`` and
``tools_change`` as well as bans and prices), and pays for optional refinements only while the
budget regime, counting the plan's reserved money, allows it. Real graphs, real with_budget."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from test_planner_node import (
    START_STATE,
    Tools,
    assert_valid_transcript,
    graph,
    summary,
)

from agent_budget import Budget, BudgetTracker, with_budget
from agent_budget.integrations.planner import SIGNAL_KEY, planner_node, reserved_regime
from agent_budget.planners import PlanningWarning
from agent_budget.tracker import Charge

pytestmark = pytest.mark.filterwarnings("ignore:.*the graph has no ToolNode")

D = Decimal


def once(make: Any) -> Any:
    """A tool behaviour that signals on its first call only (the world changes once)."""
    calls = {"n": 0}

    def behave(arg: Any) -> Any:
        calls["n"] += 1
        return make(arg) if calls["n"] == 1 else f"results({arg})"

    return behave


def run(tools: Tools, usd: str = "1", **node: Any) -> tuple[dict[str, Any], BudgetTracker]:
    budget = Budget(usd=D(usd), on_exhausted="raise")
    agent = with_budget(graph(tools, **node).compile(InMemorySaver()), budget)
    tracker = BudgetTracker(Budget(usd=D(usd), on_exhausted="raise"))
    cfg = {"configurable": {"thread_id": "t", "budget_tracker": tracker}}
    return agent.invoke(START_STATE, cfg), tracker


def test_invalidate_drops_what_it_names_sets_new_values_and_replans() -> None:
    signal = {"type": "invalidate", "types": ["Results"], "values": {"Query": "porto"}}
    tools = Tools(search=once(lambda q: {SIGNAL_KEY: signal, "result": f"results({q})"}))
    out, tracker = run(tools)
    # the first search is paid and its result dropped; the new query is searched again
    assert tools.log == [("search", "lisbon"), ("search", "porto"), ("summarize", "results(porto)")]
    assert out["held"]["Query"] == "porto"
    s = summary(out)
    assert s["goal_reached"] and s["replans"] == 1
    assert D(str(s["paid"])) == D("0.04") == tracker.spent.usd
    assert "(signals: invalidate Results; now held: Query)" in str(out["messages"][2].content)
    assert_valid_transcript(out["messages"])


def test_invalidate_with_add_start_makes_a_new_start_type_held() -> None:
    signal = {"type": "invalidate", "types": ["Results", "Query"], "add_start": ["Summary"],
              "values": {"Summary": "given by the user"}}  # fmt: skip
    tools = Tools(search=once(lambda q: {SIGNAL_KEY: signal, "result": "r"}))
    out, _ = run(tools)
    assert tools.ran() == ["search"]  # the goal became held: nothing more to call
    assert "Query" not in out["held"] and out["held"]["Summary"] == "given by the user"
    assert summary(out)["goal_reached"]


def test_tools_change_hands_over_a_new_tool_and_removes_others() -> None:
    condensed: list[str] = []

    @tool
    def condense(results: str) -> str:
        """Condense results, cheaply."""
        condensed.append(results)
        return f"condensed({results})"

    condense.metadata = {"input_types": ["Results"], "output_type": "Summary", "cost": 0.005}
    change = {"type": "tools_change", "remove": ["summarize", "digest"], "add": [condense]}
    tools = Tools(search=once(lambda q: {SIGNAL_KEY: change, "result": f"results({q})"}))
    out, tracker = run(tools)
    assert tools.ran() == ["search"] and condensed == ["results(lisbon)"]
    s = summary(out)
    assert [c["tool"] for c in s["executed"]] == ["search", "condense"] and s["replans"] == 1
    assert tracker.spent.usd == D("0.015") and tracker.spent.tool_calls == {
        "search": 1,
        "condense": 1,
    }
    assert out["held"]["Summary"] == "condensed(results(lisbon))"
    assert_valid_transcript(out["messages"])


def test_tools_change_as_data_re_prices_a_known_tool_and_ignores_an_unknown_one() -> None:
    change = {
        "type": "tools_change",
        "remove": ["summarize"],
        "add": [
            {"name": "digest", "inputs": ["Results"], "output": "Summary", "cost": 0.015},
            {"name": "nowhere", "inputs": ["Results"], "output": "Summary", "cost": 0.0},
        ],
    }
    tools = Tools(search=once(lambda q: {SIGNAL_KEY: change, "result": f"results({q})"}))
    with pytest.warns(PlanningWarning, match="'nowhere', which this node cannot call"):
        out, tracker = run(tools)
    assert tools.ran() == ["search", "digest"]
    assert tracker.spent.usd == D("0.025")  # digest at its new price, not 0.04
    assert summary(out)["goal_reached"]


def test_a_bad_signal_is_a_warning_and_the_plan_goes_on() -> None:
    bad = {"type": "invalidate", "types": "Results", "values": 3}
    tools = Tools(search=once(lambda q: {SIGNAL_KEY: bad, "result": f"results({q})"}))
    with pytest.warns(PlanningWarning, match="bad signal"):
        out, _ = run(tools)
    assert summary(out)["goal_reached"]


def rerank(log: list[str]) -> BaseTool:
    @tool
    def rerank_results(results: str) -> str:
        """Re-rank results (nice to have)."""
        log.append(results)
        return f"reranked({results})"

    rerank_results.metadata = {"input_types": ["Results"], "output_type": "Results", "cost": 0.005}
    return rerank_results


def test_an_optional_refinement_runs_when_the_regime_is_high() -> None:
    log: list[str] = []
    tools = Tools()
    out, tracker = run(tools, "1", optional=[rerank(log)])
    assert log == ["search(lisbon)"]
    assert tools.log[-1] == ("summarize", "reranked(search(lisbon))")  # the refined value
    s = summary(out)
    assert [c["tool"] for c in s["executed"]] == ["search", "summarize"]  # the plan's path
    assert s["optional"] == [{"tool": "rerank_results", "cost": 0.005, "ok": True}]
    assert tracker.spent.usd == D("0.035") and tracker.held.usd == 0
    assert_valid_transcript(out["messages"])


def test_the_reserved_plan_counts_toward_the_regime_so_extras_are_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$0.04: after search ($0.01 paid) the committed spend alone leaves 75% (HIGH), but
    summarize's $0.02 is reserved, so 25% is really left: LOW, and the extra is skipped even
    though its $0.005 would fit."""
    import agent_budget.integrations._planner_run as planner_mod  # where the run reads it

    seen: list[tuple[str, str]] = []

    def spy(tracker: BudgetTracker) -> Any:
        seen.append((tracker.regime().value, reserved_regime(tracker).value))
        return reserved_regime(tracker)

    monkeypatch.setattr(planner_mod, "reserved_regime", spy)
    log: list[str] = []
    out, tracker = run(Tools(), "0.04", optional=[rerank(log)])
    assert log == [] and seen == [("HIGH", "LOW")]
    s = summary(out)
    assert s["optional"] == [] and s["skipped_optional"] == ["rerank_results (regime LOW)"]
    assert s["goal_reached"] and tracker.spent.usd == D("0.03") <= D("0.04")


def test_reserved_regime_counts_held_money_and_skip_levels_are_checked() -> None:
    tracker = BudgetTracker(Budget(usd=1))
    res = tracker.reserve(Charge("tool", "plan", D("0.8")))
    assert tracker.regime().value == "HIGH" and reserved_regime(tracker).value == "LOW"
    res.commit()
    assert tracker.regime().value == "LOW" == reserved_regime(tracker).value
    with pytest.raises(ValueError, match="not a regime"):
        planner_node(Tools().tools, goal="Summary", skip_optional_at=["SOMETIMES"])
    bad = rerank([])
    bad.metadata = {"input_types": ["Query"], "output_type": "Results", "cost": 0.01}
    with pytest.raises(ValueError, match="must refine one type"):
        planner_node(Tools().tools, goal="Summary", optional=[bad])


class Aborted(BaseException):
    """Not an error of the call (as gevent's Timeout or trio's Cancelled): it did not run."""


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Aborted])
def test_an_interrupted_refinement_gives_its_hold_back(stop: type[BaseException]) -> None:
    """Ctrl-C (or any BaseException that is not an Exception) during an optional call: the
    call did not complete, so it is not charged, and neither its hold nor the plan's unspent
    steps stay reserved (the optional hold used to stay held)."""

    @tool
    def rerank_results(results: str) -> str:
        """Re-rank results (nice to have)."""
        raise stop

    rerank_results.metadata = {"input_types": ["Results"], "output_type": "Results", "cost": 0.005}
    budget = Budget(usd=D("1"), on_exhausted="raise")
    agent = with_budget(graph(Tools(), optional=[rerank_results]).compile(InMemorySaver()), budget)
    tracker = BudgetTracker(Budget(usd=D("1"), on_exhausted="raise"))
    cfg = {"configurable": {"thread_id": "t", "budget_tracker": tracker}}
    with pytest.raises(stop):
        agent.invoke(START_STATE, cfg)
    assert tracker.held.usd == 0 and tracker.held.total_tool_calls == 0
    assert tracker.spent.usd == D("0.01")  # the search, which completed
