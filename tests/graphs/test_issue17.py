"""The eight breaks found by wrapping public agent graphs (issue 17), one test each."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypedDict

import pytest
from fakes import ScriptedChat
from harness import (
    budget,
    config,
    model_calls,
    prompts_after_tools,
    run,
    subgraph_of_two_calls,
)
from history import assert_valid_history, history_errors
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command
from shapes import (
    BY_NAME,
    Bodies,
    create_agent_project,
    create_tool_node_with_fallback,
    handle_tool_error,
    search_tool,
    structured_respond,
    supervisor,
    supervisor_send,
)

from agent_budget import BudgetExceeded, GraphNotSupported, get_spend, with_budget

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
CFG: dict[str, Any] = {"recursion_limit": 60}


def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 60}


# --- 1. tool nodes as users build them ----------------------------------------------------


class MyToolNode(ToolNode):
    """A user's ToolNode subclass (e.g. to log calls)."""


def _tools_node(form: str, tools: list[Any]) -> Any:
    if form == "fallbacks":
        return ToolNode(tools).with_fallbacks(
            [RunnableLambda(handle_tool_error)], exception_key="error"
        )
    if form == "sequence":
        return ToolNode(tools) | RunnableLambda(lambda update: update)
    if form == "subclass":
        return MyToolNode(tools)
    if form == "function_tool_node":
        inner = ToolNode(tools)

        def call_tools(state: MessagesState) -> Any:
            return inner.invoke(state)

        return call_tools
    if form == "async_function_tool_invoke":
        by_name = {t.name: t for t in tools}

        async def arun_tools(state: MessagesState) -> dict[str, Any]:
            calls = state["messages"][-1].tool_calls
            return {"messages": [await by_name[c["name"]].ainvoke(c) for c in calls]}

        return arun_tools
    if form == "function_tool_invoke":
        by_name = {t.name: t for t in tools}

        def run_tools(state: MessagesState) -> dict[str, Any]:
            calls = state["messages"][-1].tool_calls
            return {"messages": [by_name[c["name"]].invoke(c) for c in calls]}

        return run_tools
    raise AssertionError(form)


FORMS = [
    "fallbacks",
    "sequence",
    "subclass",
    "function_tool_node",
    "function_tool_invoke",
    "async_function_tool_invoke",
]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("form", FORMS)
def test_1_tool_nodes_as_users_build_them_are_budgeted(form: str, use_async: bool) -> None:
    if form.startswith("async") and not use_async:
        pytest.skip("an async-only node runs in async runs only")
    bodies = Bodies()
    model = ScriptedChat(script=[[("search", {"query": "q"})]])  # never stops by itself
    tools = [search_tool(bodies)]
    bound = model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", aagent if use_async else agent)
    g.add_node("tools", _tools_node(form, tools))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    try:
        wrapped = with_budget(g, budget(tool_calls={"search": 2}))
    except GraphNotSupported as exc:  # refused at wrap time: must say where and what to do
        assert "'tools'" in str(exc)
        return
    inputs = {"messages": [("user", "go")]}
    out = asyncio.run(wrapped.ainvoke(inputs, CFG)) if use_async else wrapped.invoke(inputs, CFG)
    assert bodies.n["search"] == 2
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls
    assert_valid_history(out)
    if form in ("fallbacks", "sequence", "subclass"):
        shown = prompts_after_tools(model)
        assert shown and all("<budget>" in str(m.content) for m in shown)


def test_1_fallback_tool_node_still_catches_a_failing_parallel_call() -> None:
    """The customer-support fallback reads ``state["messages"]``: a budgeted step must reach
    it with the graph's state, as the bare graph does, not one call per task."""

    @tool
    def ok(q: str) -> str:
        """Works."""
        return "fine"

    @tool
    def broken(q: str) -> str:
        """Fails."""
        raise RuntimeError("backend down")

    def build() -> tuple[Any, ScriptedChat]:
        model = ScriptedChat(
            script=[[("ok", {"q": "a"}), ("broken", {"q": "b"})]], then_answer=True
        )
        bound = model.bind_tools([ok, broken])

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [bound.invoke(state["messages"])]}

        g = StateGraph(MessagesState)
        g.add_node("agent", agent)
        g.add_node("tools", create_tool_node_with_fallback([ok, broken]))
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", tools_condition)
        g.add_edge("tools", "agent")
        return g, model

    bare_graph, _ = build()
    expected = bare_graph.compile().invoke({"messages": [("user", "go")]})
    graph, _ = build()
    out = with_budget(graph, budget(usd=10)).invoke({"messages": [("user", "go")]})
    assert [m.content for m in out["messages"]] == [m.content for m in expected["messages"]]
    assert "backend down" in str(out["messages"][2].content)


def test_1_model_discovery_never_calls_into_getattr() -> None:
    class Strange:
        """A node object whose __getattr__ raises something other than AttributeError."""

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):  # what LangGraph and inspect ask of a node
                raise AttributeError(name)
            raise NameError(name)

        def __call__(self, state: MessagesState) -> dict[str, Any]:
            return {"messages": [AIMessage(content="hi")]}

    g = StateGraph(MessagesState)
    g.add_node("strange", Strange())
    g.add_edge(START, "strange")
    wrapped = with_budget(g, budget(usd=1, on_exhausted="raise"))
    assert wrapped.invoke({"messages": [("user", "go")]})["messages"][-1].content == "hi"


def test_1_customer_support_wraps_without_a_final_model() -> None:
    shape = BY_NAME["customer_support"]
    built = shape.build(True)
    built.graph = with_budget(built.graph, budget(tool_calls={"search_flights": 2}))
    out = run(shape, built)
    assert built.bodies.n["search_flights"] == 2
    assert_valid_history(out)


# --- 2. finalize respects the graph's output ----------------------------------------------


class Doc(TypedDict, total=False):
    topic: str
    draft: str
    report: str


def _write_polish(llm: ScriptedChat) -> Any:
    def write(state: Doc) -> dict[str, Any]:
        return {"draft": llm.invoke(f"Write about {state['topic']}").content}

    def polish(state: Doc) -> dict[str, Any]:
        return {"report": llm.invoke(f"Polish: {state['draft']}").content}

    g = StateGraph(Doc)
    g.add_node("write", write)
    g.add_node("polish", polish)
    g.add_edge(START, "write")
    g.add_edge("write", "polish")
    g.add_edge("polish", END)
    return g


def test_2_state_without_messages_gets_its_report() -> None:
    llm = ScriptedChat(answer="text")
    out = with_budget(_write_polish(llm), budget(model_calls=1)).invoke({"topic": "t"})
    assert set(out) == {"topic", "draft", "report"}
    assert out["report"] == "text"
    assert llm.model_calls == 2  # the draft, then the one final call that writes the report
    # ... made by the node that writes the report, with its own prompt.
    assert str(llm.seen[-1][-1].content).startswith("Polish:")


def test_2_nothing_affordable_still_ends_cleanly() -> None:
    llm = ScriptedChat(answer="text")
    out = with_budget(_write_polish(llm), budget(usd=0.0001)).invoke({"topic": "t"})
    assert out["report"].startswith("I have to stop")
    assert llm.model_calls == 0


@pytest.mark.parametrize("answer", ["finalize", "top_up"])
def test_2_interrupt_in_a_pipeline_asks_once(answer: str) -> None:
    llm = ScriptedChat(answer="text")
    graph = with_budget(
        _write_polish(llm).compile(checkpointer=InMemorySaver()),
        budget(model_calls=1, on_exhausted="interrupt"),
    )
    cfg = thread()
    first = graph.invoke({"topic": "t"}, cfg)
    assert first["__interrupt__"][0].value["type"] == "agent_budget.exhausted"
    resume = "finalize" if answer == "finalize" else {"model_calls": 1}
    out = graph.invoke(Command(resume=resume), cfg)
    assert "__interrupt__" not in out  # one question, not one per node that notices
    assert out["report"] == "text"  # the final call, or polish itself after the top-up
    assert llm.model_calls == 2


def test_2_structured_output_reaches_final_response() -> None:
    built = structured_respond(True)
    graph = with_budget(built.graph, budget(tool_calls={"get_weather": 1}))
    result = graph.invoke({"messages": [("user", "weather in sf?")]}, CFG)
    assert set(result) == {"messages", "final_response"}
    assert result["final_response"].temperature == 75.0
    assert_valid_history(result)


@pytest.mark.parametrize("shape_name", ["structured_respond", "agentic_rag"])
def test_2_answer_goes_through_the_graphs_answer_node(shape_name: str) -> None:
    """A tool step refused: the answer is still written by the graph's own answer node
    (``respond`` formats it into ``final_response``; ``generate_answer`` answers from the
    retrieved context), as in the bare graph, not by budget_finalize alone."""
    shape = BY_NAME[shape_name]
    expected = run(shape, shape.build(False))
    built = shape.build(True)
    built.graph = with_budget(built.graph, budget(**shape.tight))
    out = run(shape, built)
    assert set(out) == set(expected)
    last_call = built.models["model" if shape_name == "structured_respond" else "response"].seen[-1]
    if shape_name == "structured_respond":
        # respond's own prompt: the message before the answer, as a human message
        assert len(last_call) == 1 and isinstance(last_call[0], HumanMessage)
        assert "get_weather" in str(last_call[0].content)  # the refused call's result
        assert out["final_response"] == expected["final_response"]
    else:
        assert str(last_call[0].content).startswith("You are an assistant for question-answering")
        assert out["messages"][-1].content == expected["messages"][-1].content
    assert_valid_history(out)


def test_2_answer_node_gets_the_final_pass_under_a_call_count() -> None:
    """Model calls spent: the one call past a call-count limit goes to the answer node,
    whose output the user reads (budget_finalize's own call is then an ordinary one)."""
    built = structured_respond(True)
    graph = with_budget(built.graph, budget(model_calls=2))
    out = graph.invoke({"messages": [("user", "weather in sf?")]}, CFG)
    model = built.models["model"]
    assert model.model_calls == 3  # two paid, then respond's one call past the limit
    assert len(model.seen[-1]) == 1  # ... made by respond
    assert out["final_response"].temperature == 75.0
    assert str(out["messages"][-1].content).startswith("I have to stop")
    assert_valid_history(out)


class Pipeline(TypedDict, total=False):
    topic: str
    outline: str
    draft: str
    report: str


def _outline_write(llm: ScriptedChat, last: str) -> Any:
    """outline -> write -> ``last`` -> END: ``polish`` (a model call) or ``assemble`` (an
    output node that only formats what the others wrote)."""

    def outline(state: Pipeline) -> dict[str, Any]:
        return {"outline": llm.invoke(f"Outline {state['topic']}").content}

    def write(state: Pipeline) -> dict[str, Any]:
        return {"draft": llm.invoke(f"Write from: {state['outline']}").content}

    def polish(state: Pipeline) -> dict[str, Any]:
        return {"report": llm.invoke(f"Polish: {state['draft']}").content}

    def assemble(state: Pipeline) -> dict[str, Any]:
        return {"report": f"# {state['topic']}\n{state['outline']}\n\n{state['draft']}"}

    g = StateGraph(Pipeline)
    g.add_node("outline", outline)
    g.add_node("write", write)
    g.add_node(last, polish if last == "polish" else assemble)
    g.add_edge(START, "outline")
    g.add_edge("outline", "write")
    g.add_edge("write", last)
    g.add_edge(last, END)
    return g


def test_2_refused_before_the_answer_node_the_answer_node_writes_the_report() -> None:
    llm = ScriptedChat(answer="text")
    out = with_budget(_outline_write(llm, "polish"), budget(model_calls=1)).invoke({"topic": "t"})
    assert out["report"] == "text"
    assert str(llm.seen[-1][-1].content).startswith("Polish:")  # polish's own prompt
    assert llm.model_calls == 2  # the outline, then polish: one call past the count


def test_2_output_nodes_still_run() -> None:
    llm = ScriptedChat(answer="text")
    graph = with_budget(_outline_write(llm, "assemble"), budget(model_calls=1))
    out = graph.invoke({"topic": "t"})
    assert out["report"] == "# t\ntext\n\ntext"  # assemble's format, the draft by the final call
    assert llm.model_calls == 2


def test_2_output_node_after_parallel_writers_one_refused() -> None:
    """Two writers in parallel, one refused, then an output node that joins them: it runs
    on what the run wrote, the refused writer's key filled by the final answer."""
    llm = ScriptedChat(answer="text")

    class Parts(TypedDict, total=False):
        topic: str
        intro: str
        body: str
        report: str

    def intro(state: Parts) -> dict[str, Any]:
        return {"intro": llm.invoke("intro").content}

    def body(state: Parts) -> dict[str, Any]:
        return {"body": llm.invoke("body").content}

    def join(state: Parts) -> dict[str, Any]:
        return {"report": state["intro"] + " | " + state["body"]}

    g = StateGraph(Parts)
    g.add_node("intro", intro)
    g.add_node("body", body)
    g.add_node("join", join)
    g.add_edge(START, "intro")
    g.add_edge(START, "body")
    g.add_edge(["intro", "body"], "join")
    g.add_edge("join", END)
    out = with_budget(g, budget(model_calls=1)).invoke({"topic": "t"})
    assert out["report"] == "text | text"
    assert llm.model_calls == 2


# --- 3. one final call per run ------------------------------------------------------------


class Four(TypedDict, total=False):
    topic: str
    a: str
    b: str
    c: str
    d: str


def test_3_parallel_refused_nodes_share_one_final_call() -> None:
    llm = ScriptedChat(answer="text")
    g = StateGraph(Four)
    for key in "abcd":

        def node(state: Four, key: str = key) -> dict[str, Any]:
            return {key: llm.invoke(f"{key}: {state['topic']}").content}

        g.add_node(key, node)
        g.add_edge(START, key)
        g.add_edge(key, END)
    out = with_budget(g, budget(model_calls=1)).invoke({"topic": "t"})
    assert llm.model_calls <= 2  # the one paid node, then one final call for the run
    assert {"a", "b", "c", "d"} & set(out)


# --- 4. a raise inside a subgraph keeps its spend -----------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_4_raise_in_subgraph_keeps_spend_and_resume_holds_the_cap(use_async: bool) -> None:
    llm = ScriptedChat(answer="text")

    graph = with_budget(
        subgraph_of_two_calls(llm).compile(checkpointer=InMemorySaver()),
        budget(model_calls=2, on_exhausted="raise"),
    )
    cfg = thread()

    def invoke(value: Any) -> Any:
        if use_async:
            return asyncio.run(graph.ainvoke(value, cfg))
        return graph.invoke(value, cfg)

    with pytest.raises(BudgetExceeded):
        invoke({"messages": [("user", "go")]})
    spend = get_spend(graph, cfg)
    assert spend is not None and spend.model_calls == 2
    with pytest.raises(BudgetExceeded):
        invoke(None)  # the failed node runs again: still refused, nothing paid twice
    assert llm.model_calls == 2


# --- 5. a sub-agent finalizes with its own model ------------------------------------------


def test_5_sub_agent_final_answer_comes_from_its_own_model() -> None:
    built = supervisor(False, workers_loop=True)
    graph = with_budget(built.graph, budget(tool_calls={"web_search": 2}))
    out = graph.invoke({"messages": [("user", "NY GDP?")]}, CFG)
    worker, boss = built.models["research"], built.models["boss"]

    def finals(m: ScriptedChat) -> int:
        return sum("budget is exhausted" in str(seen[-1].content) for seen in m.seen)

    assert finals(worker) == 1  # the worker's answer, by the worker's model
    assert "NY GDP is $2.3T" in [m.content for m in out["messages"]]
    assert finals(boss) <= 1  # then at most one for the supervisor's own run
    assert built.bodies.n["web_search"] == 2
    assert_valid_history(out)


# --- 6. BudgetMiddleware with ToolStrategy leaves a valid history -------------------------


def test_6_middleware_tool_strategy_history_is_valid() -> None:
    built = create_agent_project(True, budget(tool_calls={"search": 2}))
    out = built.graph.invoke({"messages": [("user", "research")]}, thread())
    assert built.bodies.n["search"] == 2
    assert history_errors(out["messages"]) == []
    assert out["structured_response"] is not None


# --- 7. handoffs -------------------------------------------------------------------------


def test_7_handoff_results_carry_the_budget() -> None:
    built = supervisor(False)
    graph = with_budget(built.graph, budget(usd=100))
    out = graph.invoke({"messages": [("user", "NY GDP share?")]}, CFG)
    assert "&lt;budget" not in str(out["messages"])  # earlier results are not rewritten
    handoffs = [
        m
        for seen in built.models["boss"].seen
        for m in seen
        if isinstance(m, ToolMessage) and str(m.name).startswith("transfer_to_")
    ]
    assert len({m.tool_call_id for m in handoffs}) == 2
    assert all("<budget>" in str(m.content) for m in handoffs)


@pytest.mark.parametrize("mode", ["finalize", "raise"])
def test_7_delegating_supervisor_stops_when_workers_are_refused(mode: str) -> None:
    built = supervisor_send(True)
    built.models["boss"].script = [
        [("transfer_to_research_agent", {"task_description": "find NY GDP"})]
    ]  # delegates forever
    built.models["research"].then_answer = False  # each delegation searches again
    graph = with_budget(built.graph, budget(tool_calls={"web_search": 1}, on_exhausted=mode))
    if mode == "raise":
        with pytest.raises(BudgetExceeded):
            graph.invoke({"messages": [("user", "NY GDP?")]}, CFG)
    else:
        out = graph.invoke({"messages": [("user", "NY GDP?")]}, CFG)
        assert isinstance(out["messages"][-1], AIMessage)
        assert_valid_history(out)
    assert built.bodies.n["web_search"] == 1
    assert built.models["boss"].model_calls <= 4


# --- 8. get_spend for both integrations ---------------------------------------------------


def test_8_get_spend_for_middleware_agents_and_with_budget_graphs() -> None:
    built = create_agent_project(False, budget(usd=10))
    cfg = thread()
    built.graph.invoke({"messages": [("user", "research")]}, cfg)
    spend = get_spend(built.graph, cfg)
    assert spend is not None and spend.tool_calls["search"] == 2
    assert spend.model_calls == model_calls(built)

    shape = BY_NAME["custom_state"]
    b = shape.build(False)
    b.graph = with_budget(b.graph, budget(usd=10))
    cfg = config(shape)
    run(shape, b, cfg)
    assert get_spend(b.graph, cfg) == b.graph.get_spend(cfg)
    assert isinstance(b.graph.get_state(cfg).values["messages"][-2], ToolMessage)
