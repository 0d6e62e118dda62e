"""The model layer: on-device llama.cpp models, cloud models through LiteLLM, and a router.

Names are imported lazily: ``import agent_budget.models`` loads neither llama_cpp nor litellm.

    from agent_budget.models import resolve
    local = resolve("local:smollm2-135m")
    cloud = resolve("openai/gpt-4.1-mini")
    router = BudgetRouter(cheap=local, expensive=cloud, regime=lambda: tracker.regime)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "LocalChatModel": "agent_budget.models.local",
    "RemoteChatModel": "agent_budget.models.remote",
    "BudgetRouter": "agent_budget.models.router",
    "RouteDecision": "agent_budget.models.router",
    "ResponseCache": "agent_budget.models.cache",
    "resolve": "agent_budget.models.naming",
    "model_price": "agent_budget.models.naming",
    "canonical_name": "agent_budget.models.naming",
    "heuristic_difficulty": "agent_budget.models.scoring",
    "default_verifier": "agent_budget.models.scoring",
    "ModelError": "agent_budget.models.errors",
    "ModelNotAvailable": "agent_budget.models.errors",
    "InvalidModelFile": "agent_budget.models.errors",
    "ContextOverflow": "agent_budget.models.errors",
    "ModelCallFailed": "agent_budget.models.errors",
    "DEFAULT_LOCAL_MODEL": "agent_budget.models.catalog",
}

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "BudgetRouter",
    "ContextOverflow",
    "InvalidModelFile",
    "LocalChatModel",
    "ModelCallFailed",
    "ModelError",
    "ModelNotAvailable",
    "RemoteChatModel",
    "ResponseCache",
    "RouteDecision",
    "canonical_name",
    "default_verifier",
    "heuristic_difficulty",
    "model_price",
    "resolve",
]

if TYPE_CHECKING:
    from agent_budget.models.cache import ResponseCache
    from agent_budget.models.catalog import DEFAULT_LOCAL_MODEL
    from agent_budget.models.errors import (
        ContextOverflow,
        InvalidModelFile,
        ModelCallFailed,
        ModelError,
        ModelNotAvailable,
    )
    from agent_budget.models.local import LocalChatModel
    from agent_budget.models.naming import canonical_name, model_price, resolve
    from agent_budget.models.remote import RemoteChatModel
    from agent_budget.models.router import BudgetRouter, RouteDecision
    from agent_budget.models.scoring import default_verifier, heuristic_difficulty


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_budget.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
