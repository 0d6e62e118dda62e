"""What a checkpointed thread has spent, for any budgeted graph: a `with_budget` graph or a
`create_agent` agent with `BudgetMiddleware` (both keep the spend under the same state key)."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from agent_budget.tracker import Spend


def get_spend(graph: Any, config: RunnableConfig) -> Spend | None:
    """The spend recorded on ``config``'s thread by ``graph``'s checkpointer; None when the
    graph has no checkpointer or the thread has no spend yet."""
    from agent_budget.integrations.langgraph import _checkpoint_config, _newest_spend

    checkpointer = getattr(graph, "checkpointer", None)
    if checkpointer in (None, True, False):
        return None
    saved = _newest_spend(checkpointer.get_tuple(_checkpoint_config(config)))
    return Spend.from_dict(dict(saved["spent"])) if saved else None
