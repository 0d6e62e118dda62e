"""Local-remote delegation: the on-device model reads long material, the cloud model plans
and synthesizes, within the budget (Minion and MinionS).

    from agent_budget.delegation import delegate
    result = delegate(question, [long_text], local="local:smollm2-135m",
                      remote="openai/gpt-4.1-mini", mode="auto")
    result.answer, result.cut_short, result.remote_usd

Names are imported lazily (no llama_cpp or litellm on import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "delegate": "agent_budget.delegation.dispatch",
    "choose": "agent_budget.delegation.dispatch",
    "Minion": "agent_budget.delegation.minion",
    "MinionS": "agent_budget.delegation.minions",
    "DelegationResult": "agent_budget.delegation.result",
    "Mode": "agent_budget.delegation.result",
    "JobPlan": "agent_budget.delegation.schema",
    "LocalOutput": "agent_budget.delegation.schema",
    "chunk_text": "agent_budget.delegation.chunking",
    "minions_tool": "agent_budget.delegation.tool",
    "minions_node": "agent_budget.delegation.tool",
}

__all__ = [
    "DelegationResult",
    "JobPlan",
    "LocalOutput",
    "Minion",
    "MinionS",
    "Mode",
    "choose",
    "chunk_text",
    "delegate",
    "minions_node",
    "minions_tool",
]

if TYPE_CHECKING:
    from agent_budget.delegation.chunking import chunk_text
    from agent_budget.delegation.dispatch import choose, delegate
    from agent_budget.delegation.minion import Minion
    from agent_budget.delegation.minions import MinionS
    from agent_budget.delegation.result import DelegationResult, Mode
    from agent_budget.delegation.schema import JobPlan, LocalOutput
    from agent_budget.delegation.tool import minions_node, minions_tool


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_budget.delegation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
