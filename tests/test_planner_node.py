"""planner_node on real LangGraph graphs, under a real with_budget, with real @tool tools."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from agent_budget import Budget, BudgetTracker, current_tracker, with_budget
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations.planner import (
    PLAN_METADATA,
    SIGNAL_KEY,
    PriceChanged,
    ToolBanned,
    planner_node,
)
from agent_budget.planners import PlanningWarning
from agent_budget.tracker import Charge

pytestmark = pytest.mark.filterwarnings("ignore:.*the graph has no ToolNode")

D = Decimal


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    held: dict[str, Any]
    goal: str


class Tools:
    """search: Query->Results $0.01, summarize: Results->Summary $0.02 (cheapest path, $0.03);
    digest: Results->Summary $0.04; research: Query->Summary $0.06 (composite)."""

    def __init__(self, **behaviour: Any) -> None:
        self.log: list[tuple[str, Any]] = []
        self.behaviour = behaviour  # tool name -> callable(arg) returning or raising
        self.held_during: list[Decimal] = []

        def body(name: str, arg: Any) -> Any:
            self.log.append((name, arg))
            tracker = current_tracker()
            if tracker is not None:
                self.held_during.append(tracker.held.usd)
            special = self.behaviour.get(name)
            return special(arg) if special else f"{name}({arg})"

        @tool
        def search(query: str) -> Any:
            """Search the web."""
            return body("search", query)

        @tool
        def summarize(results: str) -> Any:
            """Summarize results."""
            return body("summarize", results)

        @tool
        def digest(results: str) -> Any:
            """Digest results, dearly."""
            return body("digest", results)

        @tool
        def research(query: str) -> Any:
            """Search and summarize in one call."""
            return body("research", query)

        meta = [
            (search, "Query", "Results", 0.01),
            (summarize, "Results", "Summary", 0.02),
            (digest, "Results", "Summary", 0.04),
            (research, "Query", "Summary", 0.06),
        ]
        for t, inp, out, cost in meta:
            t.metadata = {"input_types": [inp], "output_type": out, "cost": cost}
        self.tools: list[BaseTool] = [t for t, *_ in meta]

    def ran(self) -> list[str]:
        return [name for name, _ in self.log]


def graph(tools: Tools, **kw: Any) -> StateGraph:
    g = StateGraph(State)
    g.add_node("planner", planner_node(tools.tools, **{"goal": "Summary", **kw}))
    g.add_edge(START, "planner")
    g.add_edge("planner", END)
    return g


def budgeted(tools: Tools, checkpointer: Any = None, **limits: Any) -> Any:
    compiled = graph(tools).compile(checkpointer=checkpointer)
    return with_budget(compiled, Budget(on_exhausted="raise", **limits))


def tracker_of(shared: Any = None, **limits: Any) -> BudgetTracker:
    """A run's tracker passed in config (to inspect what is held and spent afterwards)."""
    return BudgetTracker(Budget(on_exhausted="raise", **limits), shared=shared)


START_STATE: dict[str, Any] = {
    "messages": [("user", "summarize lisbon")],
    "held": {"Query": "lisbon"},
}


def assert_valid_transcript(messages: Sequence[BaseMessage]) -> None:
    """Each tool call is answered by its ToolMessage right after it (chat APIs require it)."""
    for i, m in enumerate(messages):
        if isinstance(m, AIMessage) and m.tool_calls:
            ids = [c["id"] for c in m.tool_calls]
            answers = messages[i + 1 : i + 1 + len(ids)]
            assert [a.tool_call_id for a in answers if isinstance(a, ToolMessage)] == ids
    assert isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls


def summary(out: dict[str, Any]) -> dict[str, Any]:
    return out["messages"][-1].response_metadata[PLAN_METADATA]


def test_cheapest_plan_runs_in_order_and_every_call_is_on_the_budget() -> None:
    tools = Tools()
    agent = budgeted(tools, InMemorySaver(), usd=1)
    cfg = {"configurable": {"thread_id": "cheapest"}}
    out = agent.invoke(START_STATE, cfg)

    assert tools.log == [("search", "lisbon"), ("summarize", "search(lisbon)")]
    assert out["held"]["Summary"] == "summarize(search(lisbon))"
    assert_valid_transcript(out["messages"])
    calls = [c["name"] for m in out["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert calls == ["search", "summarize"]
    assert summary(out) == {
        "status": "ok",
        "steps": ["search", "summarize"],
        "cost": 0.03,
        "executed": [
            {"tool": "search", "cost": 0.01, "ok": True},
            {"tool": "summarize", "cost": 0.02, "ok": True},
        ],
        "paid": 0.03,
        "replans": 0,
        "goal_reached": True,
    }
    assert "USD Used: 0.0300, USD Remaining: 0.9700" in out["messages"][-1].content
    spend = agent.get_spend(cfg)  # persisted by the checkpointer with the node's result
    assert spend is not None
    assert spend.usd == D("0.03") and spend.tool_calls == {"search": 1, "summarize": 1}


def test_the_whole_plan_is_reserved_before_the_first_call() -> None:
    tools = Tools()
    budgeted(tools, usd=1).invoke(START_STATE)
    # While search ran, both steps were held; while summarize ran, only its own step.
    assert tools.held_during == [D("0.03"), D("0.02")]


def test_a_budget_that_cannot_pay_for_the_plan_refuses_before_any_call() -> None:
    tools = Tools()
    out = budgeted(tools, usd="0.025").invoke(START_STATE)
    assert tools.log == []
    last = out["messages"][-1]
    assert last.content.startswith("infeasible: cheapest plan costs 0.03 > budget left 0.025")
    assert summary(out)["executed"] == [] and summary(out)["paid"] == 0.0
    assert "Summary" not in out["held"]


class RefusingShared:
    """A shared (ledger-like) limit the planner cannot see: refuses past `limit` USD held."""

    def __init__(self, limit: str) -> None:
        self.limit, self.held = D(limit), D(0)
        self.log: list[tuple[str, str]] = []

    def reserve(self, charge: Charge) -> Any:
        if self.held + charge.usd > self.limit:
            raise BudgetExceeded("user.usd", charge.usd, self.limit - self.held)
        self.held += charge.usd
        self.log.append(("reserve", charge.name))
        return charge

    def commit(self, handle: Charge, actual: Charge) -> None:
        self.held -= handle.usd

    def release(self, handle: Charge) -> None:
        self.held -= handle.usd
        self.log.append(("release", handle.name))


def test_reserve_all_refusal_runs_nothing_and_holds_nothing() -> None:
    tools, shared = Tools(), RefusingShared("0.02")
    tracker = tracker_of(usd=1, shared=[shared])
    agent = budgeted(tools, usd=1)
    out = agent.invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})
    assert tools.log == []
    assert out["messages"][-1].content.startswith(
        "infeasible: refused: budget exceeded on user.usd"
    )
    assert shared.log == [("reserve", "search"), ("release", "search")] and shared.held == 0
    assert tracker.held.usd == 0 and tracker.spent.usd == 0


def banned(name: str, result: Any = "results") -> Any:
    signal = {SIGNAL_KEY: {"type": "ban_tool", "tool": name}}
    return lambda arg: {**signal, "result": f"{result}({arg})"}


def test_a_ban_signal_on_a_result_replans_around_the_banned_tool() -> None:
    tools = Tools(search=banned("summarize"))
    agent = budgeted(tools, InMemorySaver(), usd=1)
    cfg = {"configurable": {"thread_id": "ban"}}
    out = agent.invoke(START_STATE, cfg)

    assert tools.ran() == ["search", "digest"]
    assert out["held"]["Summary"] == "digest(results(lisbon))"
    s = summary(out)
    assert s["steps"] == ["search", "summarize"] and s["replans"] == 1 and s["goal_reached"]
    assert [c["tool"] for c in s["executed"]] == ["search", "digest"]
    assert D(str(s["paid"])) == D("0.05")
    spend = agent.get_spend(cfg)
    assert spend is not None
    assert spend.usd == D("0.05") and spend.tool_calls == {"search": 1, "digest": 1}
    assert_valid_transcript(out["messages"])
    assert "(signals: ban_tool summarize)" in str(out["messages"][2].content)


def test_a_tool_refusing_its_own_call_is_not_paid_and_the_plan_moves_on() -> None:
    def refuse(arg: Any) -> Any:
        raise ToolBanned("account suspended")

    tools = Tools(summarize=refuse)
    agent = budgeted(tools, usd=1)
    tracker = tracker_of(usd=1)
    out = agent.invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})

    assert tools.ran() == ["search", "summarize", "digest"]
    executed = summary(out)["executed"]
    assert executed[1] == {"tool": "summarize", "cost": 0.0, "ok": False}
    assert tracker.spent.usd == D("0.05") == sum(D(str(c["cost"])) for c in executed)
    assert tracker.spent.tool_calls == {"search": 1, "digest": 1}
    assert tracker.held.usd == 0 and not tracker.held.tool_calls.get("summarize")
    refused = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.status == "error"]
    assert len(refused) == 1 and "account suspended" in str(refused[0].content)
    assert_valid_transcript(out["messages"])


def test_a_self_ban_without_a_result_is_paid_and_produces_nothing() -> None:
    tools = Tools(summarize=lambda arg: {SIGNAL_KEY: {"type": "ban_tool"}})
    tracker = tracker_of(usd=1)
    out = budgeted(tools, usd=1).invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})
    assert tools.ran() == ["search", "summarize", "digest"]
    assert tracker.spent.usd == D("0.07")  # summarize was called: it is paid
    assert tracker.spent.tool_calls == {"search": 1, "summarize": 1, "digest": 1}
    assert D(str(summary(out)["paid"])) == D("0.07")


@pytest.mark.parametrize(
    ("new_price", "path", "paid"), [("0.03", "summarize", "0.04"), ("0.10", "digest", "0.05")]
)
def test_a_price_change_replans_and_charges_the_new_price(
    new_price: str, path: str, paid: str
) -> None:
    signal = {"type": "cost_change", "tool": "summarize", "cost": new_price}
    tools = Tools(search=lambda arg: {SIGNAL_KEY: [signal], "result": f"r({arg})"})
    tracker = tracker_of(usd=1)
    out = budgeted(tools, usd=1).invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})
    assert tools.ran() == ["search", path]
    assert tracker.spent.usd == D(paid) == D(str(summary(out)["paid"]))
    assert tracker.held.usd == 0 and summary(out)["replans"] == 1


def test_a_raised_price_change_is_not_paid() -> None:
    def dearer(arg: Any) -> Any:
        raise PriceChanged("0.50")

    tools = Tools(summarize=dearer)
    tracker = tracker_of(usd=1)
    out = budgeted(tools, usd=1).invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})
    assert tools.ran() == ["search", "summarize", "digest"]
    assert tracker.spent.usd == D("0.05") and summary(out)["goal_reached"]


def test_per_tool_and_total_call_limits_shape_the_plan() -> None:
    tools = Tools()
    agent = budgeted(tools, usd=1, tool_calls={"summarize": 0})
    agent.invoke(START_STATE)
    assert tools.ran() == ["search", "digest"]
    tools = Tools()
    budgeted(tools, usd=1, total_tool_calls=1).invoke(START_STATE)
    assert tools.ran() == ["research"]


def test_the_budget_price_wins_over_tool_metadata_with_a_warning() -> None:
    tools = Tools()
    tracker = tracker_of(usd=1, prices={"summarize": "0.05"})
    with pytest.warns(PlanningWarning, match="Budget.prices says 0.05"):
        budgeted(tools, usd=1).invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})
    assert tools.ran() == ["search", "digest"]  # summarize at 0.05 is now dearer than digest
    assert tracker.spent.usd == D("0.05")


def test_spend_persists_across_runs_of_a_thread() -> None:
    tools = Tools()
    agent = budgeted(tools, InMemorySaver(), usd="0.05")
    cfg = {"configurable": {"thread_id": "twice"}}
    agent.invoke(START_STATE, cfg)
    out = agent.invoke({"held": {"Query": "porto"}}, cfg)  # $0.02 left of the thread's $0.05
    assert tools.ran() == ["search", "summarize"]
    assert "budget left 0.02" in out["messages"][-1].content
    spend = agent.get_spend(cfg)
    assert spend is not None and spend.usd == D("0.03")


def test_goal_from_state_and_no_budget_outside_with_budget() -> None:
    tools = Tools()
    g = StateGraph(State)
    g.add_node("planner", planner_node(tools.tools, start={"Query": "lisbon"}))
    g.add_edge(START, "planner")
    g.add_edge("planner", END)
    out = g.compile().invoke({"goal": "Results"})
    assert tools.ran() == ["search"] and out["held"]["Results"] == "search(lisbon)"
    assert tools.held_during == []  # no tracker: nothing reserved
    assert summary(out)["paid"] == 0.01


def test_a_tool_that_fails_is_charged_and_the_rest_released() -> None:
    def boom(arg: Any) -> Any:
        raise RuntimeError("upstream down")

    tools = Tools(search=boom)
    tracker = tracker_of(usd=1)
    with pytest.raises(RuntimeError, match="upstream down"):
        budgeted(tools, usd=1).invoke(START_STATE, {"configurable": {"budget_tracker": tracker}})
    assert tracker.spent.usd == D("0.01") and tracker.held.usd == 0


async def test_async_path_runs_the_plan_with_the_same_accounting() -> None:
    tools = Tools(search=banned("summarize"))
    agent = budgeted(tools, InMemorySaver(), usd=1)
    cfg = {"configurable": {"thread_id": "async"}}
    out = await agent.ainvoke(START_STATE, cfg)
    assert tools.ran() == ["search", "digest"]
    assert tools.held_during == [D("0.03"), D("0.04")]  # first plan, then the replan
    spend = agent.get_spend(cfg)
    assert spend is not None and spend.usd == D("0.05")
    assert_valid_transcript(out["messages"])


def test_a_model_after_the_planner_sees_a_valid_transcript_and_both_are_charged() -> None:
    from fakes import FAKE_MODEL, FAKE_PRICE, ToolCallingFake

    tools, model = Tools(), ToolCallingFake()

    def answer(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = graph(tools)
    g.add_node("answer", answer)
    g.edges.discard(("planner", END))  # planner -> answer -> END instead
    g.add_edge("planner", "answer")
    g.add_edge("answer", END)
    limits: dict[str, Any] = {"usd": 1, "model_prices": {FAKE_MODEL: FAKE_PRICE}}
    agent = with_budget(g.compile(checkpointer=InMemorySaver()), Budget(**limits))
    cfg: Any = {"configurable": {"thread_id": "mixed"}}
    out = agent.invoke(START_STATE, cfg)

    assert tools.ran() == ["search", "summarize"]
    assert out["messages"][-1].content.startswith("final answer")
    assert_valid_transcript(list(model.seen[0]))  # what a chat API would be sent
    spend = agent.get_spend(cfg)
    assert spend is not None
    assert spend.tool_calls == {"search": 1, "summarize": 1} and spend.model_calls == 1
    assert spend.usd == D("0.03") + (100 * D(1) + 20 * D(2)) / 1_000_000


def test_an_unreachable_goal_is_reported_without_calls() -> None:
    tools = Tools()
    g = StateGraph(State)
    g.add_node("planner", planner_node(tools.tools, goal="Booking", start=["Query"]))
    g.add_edge(START, "planner")
    out = g.compile().invoke({})
    assert tools.ran() == []
    assert out["messages"][-1].content.startswith("infeasible: goal 'Booking' cannot be produced")
