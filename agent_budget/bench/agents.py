"""Agent factories a sweep can name (``agent: agent_budget.bench.agents:direct_answer``).

A factory returns a LangGraph graph (plain: the runner wraps it with `with_budget` and the
run's budget). It is called per task with whichever of ``model``, ``task`` and ``seed`` it
takes, plus the configuration's ``options``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from agent_budget.bench.tasks import Task


class MessagesState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def direct_answer(
    model: BaseChatModel,
    system: str | None = None,
    examples: Sequence[Sequence[str]] = (),
) -> StateGraph[Any, Any, Any, Any]:
    """One model call: an optional system prompt and few-shot ``examples`` ([question,
    answer] pairs) before the task's messages. The simplest baseline; few-shot examples buy
    accuracy with input tokens, which is what a sweep should show."""
    prefix: list[AnyMessage] = [SystemMessage(system)] if system else []
    for question, reply in examples:
        prefix += [HumanMessage(question), AIMessage(reply)]

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke([*prefix, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph


class PlannerState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    held: dict[str, Any]
    goal: str


def planner_agent(task: Task, seed: int = 0, method: str = "exact") -> Any:
    """`planner_node` over tools made from the task's planning problem. A tool "produces" its
    output type; a tool with a ``failure_rate`` fails that often (paid, nothing produced),
    drawn from a generator seeded by the run's seed and the task, so runs repeat exactly.

    The problem's events are told by the tool whose call reaches their ``after_step``, as
    signals in the format's terms (``ban_tool``, ``cost_change``, ``invalidate`` with the new
    start types held as ``"given"``, ``tools_change`` handing over the added tools, made here
    like the others). Events at step 0 shape the world before the first call (``invalidate``
    at step 0 shapes the held types: `PlannerTasks.graph_input`)."""
    from agent_budget.integrations.planner import SIGNAL_KEY, planner_node

    problem = task.input
    rng = random.Random(f"{seed}:{task.id}")
    specs = {t["name"]: dict(t) for t in problem["tools"]}
    later: dict[int, list[dict[str, Any]]] = {}
    calls = [0]

    def make(spec: dict[str, Any]) -> Any:
        rate = float(spec.get("failure_rate") or 0)

        def run(_out: str = spec["output"], _rate: float = rate, **_: Any) -> Any:
            calls[0] += 1
            failed = bool(_rate) and rng.random() < _rate
            signals = later.get(calls[0], [])
            if failed:  # the call was made (paid) and produced nothing
                return {SIGNAL_KEY: signals}
            if signals:  # the problem's scripted events, told by the tool that ran
                return {SIGNAL_KEY: signals, "result": f"<{_out}>"}
            return f"<{_out}>"

        return _problem_tool(spec, run)

    for event in problem.get("events") or ():
        step = int(event["after_step"])
        kind = event["type"]
        if step > 0:
            signal = {k: v for k, v in event.items() if k != "after_step"}
            if kind == "invalidate":
                signal["values"] = dict.fromkeys(event.get("add_start") or (), "given")
            elif kind == "tools_change":
                signal["add"] = [make(dict(t)) for t in event.get("add") or ()]
            later.setdefault(step, []).append(signal)
        elif kind == "ban_tool":  # before the first call: the world starts so
            specs.pop(event["tool"], None)
        elif kind == "cost_change" and event["tool"] in specs:
            specs[event["tool"]]["cost"] = event["cost"]
        elif kind == "tools_change":
            for name in event.get("remove") or ():
                specs.pop(name, None)
            specs.update({t["name"]: dict(t) for t in event.get("add") or ()})
    tools = [make(spec) for spec in specs.values()]
    graph = StateGraph(PlannerState)
    graph.add_node("planner", planner_node(tools, method=method, seed=seed))  # type: ignore[arg-type]
    graph.add_edge(START, "planner")
    graph.add_edge("planner", END)
    return graph


def _problem_tool(spec: dict[str, Any], run: Any) -> Any:
    """A LangChain tool with the planning metadata of a problem's tool ``spec``."""
    from langchain_core.tools import StructuredTool
    from pydantic import create_model

    fields: dict[str, Any] = {t.lower(): (Any, None) for t in spec["inputs"]}
    schema = create_model(f"{spec['name']}_args", **fields)
    made = StructuredTool.from_function(
        run, name=spec["name"], description=f"makes {spec['output']}", args_schema=schema
    )
    made.metadata = {
        "input_types": list(spec["inputs"]),
        "output_type": spec["output"],
        "cost": spec["cost"],
    }
    return made
