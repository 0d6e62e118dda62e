"""minions_tool and minions_node inside real agent graphs: their spend is a nested child of
the agent's budget (spend tree, per-node paths) under with_budget and BudgetMiddleware.
The agent's own chat model is a fake (the network edge); the remote is real HTTP to a
scripted endpoint on 127.0.0.1."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from conftest_delegation import Scripted, cloud_price, delegation_local_model
from fakes import FAKE_MODEL, FAKE_PRICE, ToolCallingFake
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import create_react_agent

from agent_budget import Budget, with_budget
from agent_budget.delegation import minions_node, minions_tool
from agent_budget.delegation.minions import MinionS
from agent_budget.integrations.langchain import BudgetMiddleware
from agent_budget.models import resolve

DOC = "Notes.\n\nThe access code for the north vault is 7391.\n\nDeliveries arrive on Tuesdays."
PLAN = json.dumps(
    {
        "tasks": [{"task": "Find the access code", "advice": "", "keywords": ["code"]}],
        "chunking": {"by": "paragraphs", "size": 2000, "overlap": 0},
    }
)
DECISION = json.dumps({"decision": "answer", "answer": "7391", "feedback": ""})


def budget(**kw: Any) -> Budget:
    return Budget(prices={"ask_documents": 0}, model_prices={FAKE_MODEL: FAKE_PRICE}, **kw)


def remote(server: Scripted) -> Any:
    return resolve("openai/scripted", api_base=server.base, price=cloud_price(), max_retries=0)


@pytest.mark.local_model
def test_tool_under_with_budget_is_a_nested_child(scripted: Scripted) -> None:
    scripted.script = [PLAN, DECISION]
    ms = MinionS(
        local=delegation_local_model(),
        remote=remote(scripted),
        max_rounds=1,
        max_jobs=1,
        local_max_tokens=48,
    )
    tool = minions_tool(
        DOC,
        local=ms.local,
        remote=ms.remote,
        delegate_mode="minions",
        minions=ms,
        budget=Budget(usd=Decimal("0.01")),
    )
    model = ToolCallingFake(tool_name="ask_documents", max_tool_turns=1)
    agent = with_budget(
        create_react_agent(model, [tool], checkpointer=InMemorySaver()), budget(usd=Decimal("0.5"))
    )
    cfg: Any = {"configurable": {"thread_id": "t1"}}
    out = agent.invoke({"messages": [("user", "what is the vault code?")]}, cfg)
    reply = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert "7391" in str(reply.content) and "minions, 1 round(s)" in str(reply.content)
    spend = agent.get_state(cfg).values["agent_budget"]
    assert "minions" in spend["children"], spend
    assert Decimal(str(spend["children"]["minions"]["spent"]["usd"])) > 0
    # The agent's model saw the budget message after the tool call, spend included.
    last_prompt = model.seen[-1]
    assert any("budget" in str(m.content).lower() for m in last_prompt)


def test_node_under_budget_middleware_agent_and_graph(scripted: Scripted) -> None:
    scripted.script = ["7391"]
    node = minions_node(
        DOC,
        local=None,
        remote=remote(scripted),
        delegate_mode="remote_only",
        budget=Budget(usd=Decimal("0.01")),
    )
    g = StateGraph(MessagesState)
    g.add_node("read", node)
    g.add_edge(START, "read")
    graph = with_budget(g.compile(), budget(usd=Decimal("0.5")))
    out = graph.invoke({"messages": [("user", "what is the vault code?")]})
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and last.content == "7391"
    meta = last.response_metadata["agent_budget_delegation"]
    assert meta["protocol"] == "remote_only" and meta["calls"][0]["node"] == "round-1/remote"
    assert Decimal(meta["remote_usd"]) > 0
    # Under create_agent + BudgetMiddleware, the tool's spend is a child of the agent's.
    scripted.script = ["7391"]
    tool = minions_tool(DOC, local=None, remote=remote(scripted), delegate_mode="remote_only")
    model = ToolCallingFake(tool_name="ask_documents", max_tool_turns=1)
    mw = BudgetMiddleware(budget(usd=Decimal("0.5")))
    agent = create_agent(model, [tool], middleware=[mw], checkpointer=InMemorySaver())
    cfg: Any = {"configurable": {"thread_id": "t2"}}
    out = agent.invoke({"messages": [("user", "what is the vault code?")]}, cfg)
    reply = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert str(reply.content).startswith("7391 [remote_only")
    spend = agent.get_state(cfg).values["agent_budget"]
    assert "minions" in spend["children"], spend
    assert Decimal(str(spend["children"]["minions"]["spent"]["usd"])) > 0
