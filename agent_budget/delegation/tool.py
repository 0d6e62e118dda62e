"""`minions_tool` and `minions_node`: delegation inside a LangGraph agent.

Both spend from the agent's budget as a nested child (``minions/round-1/job-2`` in its spend
tree and ledger) when they run under `with_budget` or `BudgetMiddleware`, and from a budget
of their own otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import BaseTool, StructuredTool

from agent_budget.budget import Budget
from agent_budget.delegation.dispatch import delegate
from agent_budget.delegation.minion import Minion
from agent_budget.delegation.minions import MinionS
from agent_budget.delegation.result import Mode

DELEGATION_METADATA = "agent_budget_delegation"


def minions_tool(
    documents: str | Sequence[str],
    *,
    local: BaseChatModel | str | None = "local:smollm2-135m",
    remote: BaseChatModel | str | None = None,
    delegate_mode: Mode = "auto",
    budget: Budget | None = None,
    name: str = "ask_documents",
    description: str | None = None,
    minions: MinionS | None = None,
) -> BaseTool:
    """A tool answering questions over ``documents`` with local-remote delegation. It
    returns the answer with how it was reached (protocol, rounds, spend, cut short or not)."""
    docs = _as_list(documents)

    def ask(query: str) -> str:
        """query: the question to answer from the documents."""
        result = delegate(
            query,
            docs,
            local=local,
            remote=remote,
            mode=delegate_mode,
            budget=budget,
            name="minions",
            minions=minions,
        )
        return result.summary()

    return StructuredTool.from_function(
        ask,
        name=name,
        description=description
        or (
            f"Answer a question about {len(docs)} long document(s) "
            f"({sum(len(d) for d in docs)} characters) you cannot read directly."
        ),
    )


def minions_node(
    documents: str | Sequence[str] | Callable[[dict[str, Any]], Sequence[str]],
    *,
    local: BaseChatModel | str | None = "local:smollm2-135m",
    remote: BaseChatModel | str | None = None,
    delegate_mode: Mode = "auto",
    budget: Budget | None = None,
    messages_key: str = "messages",
    minions: MinionS | None = None,
    minion: Minion | None = None,
) -> Any:
    """A graph node answering the last human message over ``documents`` (or over what
    ``documents(state)`` returns, when the documents travel in the graph's state); it
    appends an AIMessage whose ``response_metadata["agent_budget_delegation"]`` is the full
    result."""
    fixed = None if callable(documents) else _as_list(documents)

    def node(state: dict[str, Any]) -> dict[str, Any]:
        docs = fixed if fixed is not None else _as_list(documents(state))  # type: ignore[operator]
        messages = state.get(messages_key) or []
        question = next(
            (str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), ""
        )
        result = delegate(
            question,
            docs,
            local=local,
            remote=remote,
            mode=delegate_mode,
            budget=budget,
            name="minions",
            minions=minions,
            minion=minion,
        )
        reply = AIMessage(
            content=result.answer or "No answer found in the documents.",
            response_metadata={DELEGATION_METADATA: result.to_dict()},
        )
        return {messages_key: [reply]}

    return node


def _as_list(documents: str | Sequence[str]) -> list[str]:
    return [documents] if isinstance(documents, str) else list(documents)
