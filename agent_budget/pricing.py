"""The unified cost of one call: tokens priced per model + the tool's price per call.

Model prices come, in order, from the budget's ``model_prices``, from prices registered in
this process (`register_model_price`, used by the model layer for local models), from
LiteLLM's bundled price map, and last from the budget's ``price_fallback``. A model found
nowhere raises `UnknownPrice`: a silent $0 would make every limit meaningless.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from agent_budget.budget import Budget, ModelPrice
from agent_budget.errors import UnknownPrice

_registered: dict[str, ModelPrice] = {}
_registered_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedPrice:
    """A model's price per token and where it came from (shown by reports and the CLI)."""

    model: str
    input_per_token: Decimal
    output_per_token: Decimal
    source: str  # "budget" | "registered" | "litellm" | "fallback"

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return self.input_per_token * input_tokens + self.output_per_token * output_tokens


def register_model_price(model: str, *, input: Any, output: Any) -> None:
    """Register a price (USD per million tokens) for a model this process uses."""
    price = ModelPrice(input=input, output=output)
    with _registered_lock:
        _registered[model] = price


def registered_model_price(model: str) -> ModelPrice | None:
    return _registered.get(model)


def import_litellm() -> Any:
    """Import LiteLLM lazily, with its bundled price map (it would fetch one otherwise)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Otherwise each lookup of a model LiteLLM cannot place prints a banner to stdout.
    litellm.suppress_debug_info = True
    return litellm


@lru_cache(maxsize=1024)
def litellm_price(model: str) -> tuple[Decimal, Decimal] | None:
    """(input, output) USD per token from LiteLLM's map, or None if it does not know the model."""
    litellm = import_litellm()
    candidates = [model]
    if "/" in model:
        candidates.append(model.split("/", 1)[1])
    for name in candidates:
        info = litellm.model_cost.get(name)
        if info is None:
            try:
                info = litellm.get_model_info(name)
            except Exception:  # LiteLLM raises a plain Exception for unknown models
                info = None
        if not info:
            continue
        inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
        if inp is None and out is None:
            continue
        return Decimal(str(inp or 0)), Decimal(str(out or 0))
    return None


class PriceBook:
    """Prices for one budget. Resolved prices are cached per model name."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._cache: dict[str, ResolvedPrice] = {}

    def model_price(self, model: str | None) -> ResolvedPrice:
        name = model or ""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        price = self._resolve(name)
        self._cache[name] = price
        return price

    def _resolve(self, name: str) -> ResolvedPrice:
        own = self.budget.model_prices.get(name)
        if own is not None:
            return ResolvedPrice(name, own.input_per_token, own.output_per_token, "budget")
        reg = registered_model_price(name)
        if reg is not None:
            return ResolvedPrice(name, reg.input_per_token, reg.output_per_token, "registered")
        if name:
            found = litellm_price(name)
            if found is not None:
                return ResolvedPrice(name, found[0], found[1], "litellm")
        fb = self.budget.price_fallback
        if fb is not None:
            return ResolvedPrice(name, fb.input_per_token, fb.output_per_token, "fallback")
        raise UnknownPrice(name or "(a chat model that reports no model name)")

    def model_cost(self, model: str | None, input_tokens: int, output_tokens: int) -> Decimal:
        return self.model_price(model).cost(input_tokens, output_tokens)

    def tool_price(self, tool: str) -> Decimal:
        price = self.budget.prices.get(tool)
        if price is not None:
            return price
        if self.budget.default_tool_price is None:
            raise UnknownPrice(tool, kind="tool")
        return self.budget.default_tool_price
