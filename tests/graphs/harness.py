"""Run a corpus shape bare or budgeted, the way its users run it: to the end, answering
its interrupts (``interrupt()`` with the shape's resume value, ``interrupt_before`` by
going on), sync or async as its nodes are written."""

from __future__ import annotations

import asyncio
import operator
import uuid
from typing import Annotated, Any, TypedDict

from fakes import ScriptedChat
from langchain_core.messages import AnyMessage, ToolMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command
from shapes import MODEL_PRICES, Built, Shape, create_agent_project

from agent_budget import Budget, with_budget

TOOL_PRICE = 0.01


def budget(**kw: Any) -> Budget:
    base: dict[str, Any] = {
        "model_prices": MODEL_PRICES,
        "default_tool_price": TOOL_PRICE,
    }
    base.update(kw)
    return Budget(**base)


def build(shape: Shape, *, loop: bool, b: Budget | None, wrap: bool = True) -> Built:
    if shape.middleware:
        return create_agent_project(loop, b or budget(usd=100))
    built = shape.build(loop)
    if wrap and b is not None:
        built.graph = with_budget(built.graph, b)
    return built


def config(shape: Shape, thread: str | None = None) -> dict[str, Any]:
    configurable = {"thread_id": thread or uuid.uuid4().hex, **shape.config}
    return {"configurable": configurable, "recursion_limit": 80}


def _context(shape: Shape) -> dict[str, Any]:
    if shape.name == "react_template":
        from shapes import ReactContext

        return {"context": ReactContext()}
    return {}


def run(shape: Shape, built: Built, cfg: dict[str, Any] | None = None) -> Any:
    """Invoke to the end; the final output (the graph's output schema)."""
    cfg = cfg or config(shape)
    kw = _context(shape)
    graph = built.graph

    async def ainvoke(value: Any) -> Any:
        return await graph.ainvoke(value, cfg, **kw)

    def invoke(value: Any) -> Any:
        if shape.is_async:
            return asyncio.run(ainvoke(value))
        return graph.invoke(value, cfg, **kw)

    out = invoke(shape.inputs)
    for _ in range(10):
        if graph.checkpointer is None:
            break
        state = graph.get_state(cfg)
        if not state.next:
            break
        out = invoke(Command(resume=shape.resume) if state.interrupts else None)
    return out


def stream(shape: Shape, built: Built, modes: list[str]) -> list[tuple[str, Any]]:
    cfg = config(shape)
    kw = _context(shape)
    graph = built.graph
    chunks: list[tuple[str, Any]] = []

    async def astream(value: Any) -> None:
        async for mode, chunk in graph.astream(value, cfg, stream_mode=modes, **kw):
            chunks.append((mode, chunk))

    def go(value: Any) -> None:
        if shape.is_async:
            asyncio.run(astream(value))
        else:
            for mode, chunk in graph.stream(value, cfg, stream_mode=modes, **kw):
                chunks.append((mode, chunk))

    go(shape.inputs)
    for _ in range(10):
        if graph.checkpointer is None:
            break
        state = graph.get_state(cfg)
        if not state.next:
            break
        go(Command(resume=shape.resume) if state.interrupts else None)
    return chunks


def model_calls(built: Built) -> int:
    return sum(m.model_calls for m in built.models.values())


def prompts_after_tools(model: ScriptedChat) -> list[ToolMessage]:
    """The last tool result of every prompt that ends with tool results."""
    return [seen[-1] for seen in model.seen if seen and isinstance(seen[-1], ToolMessage)]


class NotesState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    notes: Annotated[list[str], operator.add]


def subgraph_of_two_calls(llm: ScriptedChat) -> StateGraph[Any, Any, Any, Any]:
    """first (1 model call) -> a subgraph of two calls: under ``model_calls=2`` the second
    call in the subgraph is refused (a raise inside a subgraph)."""

    def step(state: NotesState) -> dict[str, Any]:
        return {"notes": [llm.invoke(state["messages"]).content]}

    inner = StateGraph(NotesState)
    inner.add_node("one", step)
    inner.add_node("two", step)
    inner.add_edge(START, "one")
    inner.add_edge("one", "two")
    outer = StateGraph(NotesState)
    outer.add_node("first", step)
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "first")
    outer.add_edge("first", "inner")
    return outer
