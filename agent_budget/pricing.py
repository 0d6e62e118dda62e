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
from agent_budget.policies import resolve_alias

ZERO = Decimal(0)
_registered: dict[str, ModelPrice] = {}
_registered_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedPrice:
    """A model's price per token and where it came from (shown by reports and the CLI)."""

    model: str
    input_per_token: Decimal
    output_per_token: Decimal
    source: str  # "budget" | "registered" | "litellm" | "fallback" | "unpriced", + alias note
    cached_input_per_token: Decimal | None = None  # prompt tokens read from a provider cache

    @property
    def unpriced(self) -> bool:
        return self.source.startswith("unpriced")

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> Decimal:
        cached_price = self.cached_input_per_token
        if cached_price is None:  # no separate price: cached tokens cost what others do
            cached_price, cached_input_tokens = self.input_per_token, 0
        cached = min(cached_input_tokens, input_tokens)
        return (
            self.input_per_token * (input_tokens - cached)
            + cached_price * cached
            + self.output_per_token * output_tokens
        )


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
    info = litellm_info(model)
    return None if info is None else (info[0], info[1])


@lru_cache(maxsize=1024)
def litellm_info(model: str) -> tuple[Decimal, Decimal, Decimal | None] | None:
    """(input, output, cached input or None) USD per token from LiteLLM's map."""
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
        cached = info.get("cache_read_input_token_cost")
        return (
            Decimal(str(inp or 0)),
            Decimal(str(out or 0)),
            None if cached is None else Decimal(str(cached)),
        )
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

    def _resolve(self, asked: str) -> ResolvedPrice:
        name = resolve_alias(asked, self.budget.price_aliases)
        via = "" if name == asked else f" (alias of {name})"
        own = self.budget.model_prices.get(name) or registered_model_price(name)
        if own is not None:
            source = "budget" if name in self.budget.model_prices else "registered"
            return ResolvedPrice(
                asked,
                own.input_per_token,
                own.output_per_token,
                source + via,
                own.cached_input_per_token,
            )
        if name:
            found = litellm_info(name)
            if found is not None:
                return ResolvedPrice(asked, found[0], found[1], "litellm" + via, found[2])
        fb = self.budget.price_fallback
        if fb is not None:
            return ResolvedPrice(asked, fb.input_per_token, fb.output_per_token, "fallback")
        if not self.budget.strict_prices:
            return ResolvedPrice(asked, ZERO, ZERO, "unpriced")
        raise UnknownPrice(asked or "(a chat model that reports no model name)")

    def model_cost(
        self, model: str | None, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
    ) -> Decimal:
        return self.model_price(model).cost(input_tokens, output_tokens, cached_input_tokens)

    def tool_price(self, tool: str) -> Decimal:
        price = self.budget.prices.get(tool)
        if price is not None:
            return price
        if self.budget.default_tool_price is None:
            raise UnknownPrice(tool, kind="tool")
        return self.budget.default_tool_price
