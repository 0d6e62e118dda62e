"""The BATS research agent (Budget-Aware Tool-Use Enables Effective Agent Scaling) and its two
baselines, over the web-search tools of `agent_budget.tools.search`.

    from agent_budget.agents.search import build_bats_agent, research_budget
    budget = research_budget(queries=5, urls=5, usd=0.10)     # Query / URL / USD budget
    agent = build_bats_agent(model, tools, budget)            # tools: search_tools(...)
    state = agent.invoke({"messages": [("user", question)]}, config)

Why here and not in ``tools/search/``: DESIGN.md's layers put ``tools/`` below
``integrations/``, and an agent reads the live budget through
``integrations.langgraph.current_tracker``; the tools know nothing of the agent (the travel
agent lives in `agent_budget.agents.travel` for the same reason).
"""

from __future__ import annotations

from agent_budget.agents.search.baselines import build_react_agent, react_graph
from agent_budget.agents.search.budgeting import (
    FETCH_TOOL,
    SEARCH_TOOL,
    TOOL_LABELS,
    TOOL_PRICES,
    Allowance,
    allowance,
    research_budget,
)
from agent_budget.agents.search.graph import ResearchState, bats_graph, build_bats_agent
from agent_budget.agents.search.verify import Verdict, decide

__all__ = [
    "FETCH_TOOL",
    "SEARCH_TOOL",
    "TOOL_LABELS",
    "TOOL_PRICES",
    "Allowance",
    "ResearchState",
    "Verdict",
    "allowance",
    "bats_graph",
    "build_bats_agent",
    "build_react_agent",
    "decide",
    "react_graph",
    "research_budget",
]
