"""The BATS paper's baselines, with the same model, tools and prompt as the agent:

- *ReAct*: the model and a `ToolNode` in a loop, with a fixed step limit (``model_calls``)
  and the Query / URL limits enforced but never shown (``research_budget(show=False)``);
  when a limit is spent the run is told to answer, as the paper's budget forcing does.
- *ReAct + budget message*: the same loop under `with_budget` with the message appended to
  every tool result; no plan, no verifier.

Both are the one graph below; what differs is the budget it runs under.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from agent_budget.agents.search.graph import agent_prompt


def react_graph(model: Any, tools: Sequence[BaseTool]) -> StateGraph[Any, Any, Any, Any]:
    """A plain ReAct loop: ``agent`` (model with tools) <-> ``tools`` until it answers."""
    with_tools = model.bind_tools(list(tools))

    def agent(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        prompt = [SystemMessage(agent_prompt()), *state["messages"]]
        return {"messages": [with_tools.invoke(prompt, config)]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(list(tools), handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, ["tools", "__end__"])
    graph.add_edge("tools", "agent")
    return graph


def build_react_agent(
    model: Any, tools: Sequence[BaseTool], budget: Any, *, checkpointer: Any = None
) -> Any:
    """The ReAct loop under ``budget``: `research_budget(..., steps=N, show=False)` for the
    plain baseline, `research_budget(...)` for ReAct + budget message."""
    from agent_budget.integrations.langgraph import with_budget

    graph = react_graph(model, tools)
    compiled = graph.compile(checkpointer=checkpointer) if checkpointer is not None else graph
    return with_budget(compiled, budget, final_model=model)
