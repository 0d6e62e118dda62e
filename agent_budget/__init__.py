"""agent-budget: budgets that LangGraph and LangChain agents can see and cannot overspend.

    from agent_budget import Budget, with_budget
    agent = with_budget(my_graph, Budget(usd=0.50, tool_calls={"web_search": 10}))

Heavy parts (LangGraph integration, LiteLLM, llama.cpp) are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_budget.budget import Budget, ModelPrice, TokenLimits
from agent_budget.errors import (
    AgentBudgetError,
    BudgetExceeded,
    GraphNotSupported,
    InvalidBudget,
    LedgerUnavailable,
    UnknownPrice,
)

if TYPE_CHECKING:
    from agent_budget.integrations.callbacks import BudgetCallbackHandler
    from agent_budget.integrations.langchain import BudgetMiddleware
    from agent_budget.integrations.langgraph import BudgetedGraph, current_tracker, with_budget
    from agent_budget.integrations.threads import get_spend
    from agent_budget.pricing import PriceBook, register_model_price
    from agent_budget.run import Retry
    from agent_budget.tracker import BudgetTracker, Charge, Regime, Spend

_LAZY = {
    "with_budget": "agent_budget.integrations.langgraph",
    "current_tracker": "agent_budget.integrations.langgraph",
    "BudgetedGraph": "agent_budget.integrations.langgraph",
    "get_spend": "agent_budget.integrations.threads",
    "Retry": "agent_budget.run",
    "BudgetCallbackHandler": "agent_budget.integrations.callbacks",
    "BudgetMiddleware": "agent_budget.integrations.langchain",
    "BudgetTracker": "agent_budget.tracker",
    "Charge": "agent_budget.tracker",
    "Regime": "agent_budget.tracker",
    "Spend": "agent_budget.tracker",
    "PriceBook": "agent_budget.pricing",
    "register_model_price": "agent_budget.pricing",
}

__all__ = [
    "AgentBudgetError",
    "Budget",
    # imported on first use:
    "BudgetCallbackHandler",
    "BudgetExceeded",
    "BudgetMiddleware",
    "BudgetTracker",
    "BudgetedGraph",
    "Charge",
    "GraphNotSupported",
    "InvalidBudget",
    "LedgerUnavailable",
    "ModelPrice",
    "PriceBook",
    "Regime",
    "Retry",
    "Spend",
    "TokenLimits",
    "UnknownPrice",
    "current_tracker",
    "get_spend",
    "register_model_price",
    "with_budget",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_budget' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
