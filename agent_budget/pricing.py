"""The unified cost of one call: tokens priced per model + the tool's price per call.

Model prices come, in order, from the budget's ``model_prices`` and ``free_models``, from
prices registered in this process (`register_model_price`, used by the model layer for
local models), from LiteLLM's price map (the installed package's, or the file the budget's
``price_map`` pins), and last from the budget's ``price_fallback``. A model found nowhere
raises `UnknownPrice`: a silent $0 would make every limit meaningless. So does a model
LiteLLM lists at $0 (many such entries are placeholders) unless it is known to be free:
priced at 0 by the user, listed in ``free_models``, or run locally.

A price the user writes is computed here, exactly (`ModelPrice.cost`); a price from a
LiteLLM map is computed by LiteLLM's cost function (`MapEntry.cost`). Both know tiers above
a prompt size, cache reads and writes, reasoning and audio tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agent_budget.budget import Budget
from agent_budget.errors import InvalidBudget, UnknownPrice
from agent_budget.policies import resolve_alias
from agent_budget.prices.litellm_map import (
    MapEntry,
    PriceMap,
    bundled_entry,
    import_litellm,
    litellm_version,
    load_price_map,
    pinned_entry,
)
from agent_budget.prices.schema import ModelPrice
from agent_budget.prices.usage import TokenUsage

__all__ = [
    "PriceBook",
    "ResolvedPrice",
    "TokenUsage",
    "import_litellm",
    "litellm_info",
    "litellm_price",
    "register_model_price",
    "register_own_price",
    "registered_model_price",
]

ZERO = Decimal(0)
FREE = ModelPrice(input=ZERO, output=ZERO)
_registered: dict[str, ModelPrice] = {}
_registered_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedPrice:
    """A model's price, where it came from, and how to cost a call with it."""

    model: str
    input_per_token: Decimal
    output_per_token: Decimal
    source: str  # "budget" | "free" | "registered" | "litellm" | "pricemap" | "fallback"
    # | "unpriced", + an alias note
    cached_input_per_token: Decimal | None = None  # prompt tokens read from a provider cache
    structure: ModelPrice | None = None
    """The user's price (budget, registered, fallback, free): costed here, in Decimal."""
    entry: MapEntry | None = None
    """A LiteLLM map entry: costed by LiteLLM's cost function."""
    note: str = ""
    """Why: e.g. "LiteLLM lists it at $0" for an unpriced model."""

    unpriced: bool = field(init=False)
    price_source: str = field(init=False)
    """What a charge records: ``litellm@<version>``, ``pricemap:<file>@<sha256>``,
    ``budget``, ``registered``, ``free``, ``fallback`` or ``unpriced``."""

    def __post_init__(self) -> None:
        # Fixed for the price's life, and read on every model call: computed once.
        unpriced = self.source.startswith("unpriced")
        origin = self.entry.origin if self.entry is not None and not unpriced else None
        object.__setattr__(self, "unpriced", unpriced)
        object.__setattr__(self, "price_source", origin or self.source.split(" ", 1)[0])

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> Decimal:
        cached = min(max(cached_input_tokens, 0), input_tokens)
        return self.cost_of(TokenUsage(input_tokens, output_tokens, cache_read=cached))

    def cost_of(self, usage: TokenUsage) -> Decimal:
        """The USD of a call that used ``usage``, at the tier its prompt falls in."""
        if self.unpriced:
            return ZERO
        if self.structure is not None:
            return self.structure.cost(usage)
        if self.entry is not None:
            return self.entry.cost(usage)
        return ZERO  # pragma: no cover - every priced ResolvedPrice has one of the two

    def worst_case(
        self, prompt_tokens: int, max_output_tokens: int, service_tier: str | None = None
    ) -> Decimal:
        """The most a call with this prompt and output cap can cost: billed at the tier
        the prompt falls in, its prompt tokens as cache writes and its output as reasoning
        tokens where those cost more, at the ``service_tier`` the call asks for (LiteLLM
        prices only)."""
        if self.unpriced:
            return ZERO
        if self.structure is not None:
            return self.structure.worst_case(prompt_tokens, max_output_tokens)
        if self.entry is not None:
            return self.entry.worst_case(prompt_tokens, max_output_tokens, service_tier)
        return ZERO  # pragma: no cover

    def rates_at(self, prompt_tokens: int) -> tuple[Decimal, Decimal]:
        """(input, output) USD per token, worst case, for a prompt of this size: what
        sizing an answer to the money left needs."""
        prompt_only = self.worst_case(prompt_tokens, 0)
        per_in = prompt_only / prompt_tokens if prompt_tokens else self.input_per_token
        out = (self.worst_case(prompt_tokens, 1_000_000) - prompt_only) / 1_000_000
        return per_in, out


def register_model_price(model: str, *, input: Any, output: Any, **structure: Any) -> None:
    """Register a price (USD per million tokens) for a model this process uses; the other
    fields of `ModelPrice` (``cached_input``, ``cache_write``, ``tiers``, ...) are accepted
    too. A price of 0 says the model is free (local models register so)."""
    price = ModelPrice(input=input, output=output, **structure)
    with _registered_lock:
        _registered[model] = price


def register_own_price(
    model: str, input: Any = None, output: Any = None, *, free_by_default: bool = False
) -> None:
    """The one way a model of ours registers its price: the price it was given (either
    half may be left out: 0), else, for a model that runs here (``free_by_default``), $0
    unless a price is registered already."""
    if input is not None or output is not None:
        register_model_price(model, input=input or 0, output=output or 0)
    elif free_by_default and registered_model_price(model) is None:
        register_model_price(model, input=0, output=0)


def registered_model_price(model: str) -> ModelPrice | None:
    return _registered.get(model)


def litellm_price(model: str) -> tuple[Decimal, Decimal] | None:
    """(input, output) USD per token from LiteLLM's map, or None if it does not know the model."""
    info = litellm_info(model)
    return None if info is None else (info[0], info[1])


def litellm_info(model: str) -> tuple[Decimal, Decimal, Decimal | None] | None:
    """(input, output, cached input or None) USD per token from LiteLLM's bundled map."""
    entry = bundled_entry(model)
    if entry is None:
        return None
    return (
        entry.rate("input_cost_per_token") or ZERO,
        entry.rate("output_cost_per_token") or ZERO,
        entry.rate("cache_read_input_token_cost"),
    )


class PriceBook:
    """Prices for one budget. Resolved prices are cached per model name."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._cache: dict[str, ResolvedPrice] = {}
        self.price_map: PriceMap | None = None
        if budget.price_map is not None:
            try:
                self.price_map = load_price_map(budget.price_map)
            except ValueError as exc:
                raise InvalidBudget(f"budget.price_map: {exc}") from None

    def model_price(self, model: str | None) -> ResolvedPrice:
        name = model or ""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        price = self._resolve(name)
        self._cache[name] = price
        return price

    def map_entry(self, name: str) -> MapEntry | None:
        """The model's entry in the map this budget prices by (pinned, else LiteLLM's)."""
        if not name:
            return None
        if self.price_map is not None:
            return pinned_entry(self.price_map, name)
        return bundled_entry(name)

    def _resolve(self, asked: str) -> ResolvedPrice:
        name = resolve_alias(asked, self.budget.price_aliases)
        via = "" if name == asked else f" (alias of {name})"
        own = self.budget.model_prices.get(name)
        source = "budget"
        if own is None and name and {name, asked} & set(self.budget.free_models):
            own, source = FREE, "free"
        if own is None:
            own, source = registered_model_price(name), "registered"
        if own is not None:
            return _own(asked, own, source + via)
        entry = self.map_entry(name)
        stub = None
        if entry is not None:
            kind = "litellm" if not entry.pinned else "pricemap"
            if not entry.is_zero or entry.is_local:
                note = "a local model: free" if entry.is_zero else ""
                # The untiered rates as LiteLLM bills them (entries priced by a
                # `tiered_pricing` table have no flat input/output price to read).
                prompt = entry.cost(TokenUsage(1000, 0))
                per_in = prompt / 1000
                per_out = (entry.cost(TokenUsage(1000, 1_000_000)) - prompt) / 1_000_000
                return ResolvedPrice(
                    asked,
                    per_in.normalize(),
                    per_out.normalize(),
                    kind + via,
                    entry.rate("cache_read_input_token_cost"),
                    entry=entry,
                    note=note,
                )
            stub = entry
        fb = self.budget.price_fallback
        if fb is not None:
            return _own(asked, fb, "fallback")
        if not self.budget.strict_prices:
            note = "" if stub is None else f"{_where(stub)} lists it at $0"
            return ResolvedPrice(asked, ZERO, ZERO, "unpriced", entry=stub, note=note)
        if stub is not None:
            raise UnknownPrice(asked, hint=zero_price_hint(asked, stub))
        if self.price_map is not None and name:
            raise UnknownPrice(
                asked,
                hint=(
                    f"The pinned price map {self.price_map.path} has no entry for it. Add "
                    f"one there, or price it in the budget: model_prices: {{{asked}: "
                    "{input: 0.15, output: 0.60}} (USD per million tokens)."
                ),
            )
        raise UnknownPrice(asked or "(a chat model that reports no model name)")

    def model_cost(
        self,
        model: str | None,
        input_tokens: int | TokenUsage,
        output_tokens: int = 0,
        cached_input_tokens: int = 0,
    ) -> Decimal:
        """The USD of one call: pass a `TokenUsage` (all the details prices depend on) or
        the plain counts."""
        price = self.model_price(model)
        if isinstance(input_tokens, TokenUsage):
            return price.cost_of(input_tokens)
        return price.cost(input_tokens, output_tokens, cached_input_tokens)

    def worst_case_cost(self, model: str | None, prompt_tokens: int, max_output: int) -> Decimal:
        return self.model_price(model).worst_case(prompt_tokens, max_output)

    def tool_price(self, tool: str) -> Decimal:
        price = self.budget.prices.get(tool)
        if price is not None:
            return price
        if self.budget.default_tool_price is None:
            raise UnknownPrice(tool, kind="tool")
        return self.budget.default_tool_price


def _own(asked: str, price: ModelPrice, source: str) -> ResolvedPrice:
    return ResolvedPrice(
        asked,
        price.input_per_token,
        price.output_per_token,
        source,
        price.cached_input_per_token,
        structure=price,
    )


def _where(entry: MapEntry) -> str:
    if entry.pinned:
        return f"the pinned price map ({entry.origin})"
    return f"LiteLLM {litellm_version()}'s price map"


def zero_price_hint(model: str, entry: MapEntry) -> str:
    """Why a $0 map entry is refused, and the two ways to price the model."""
    return (
        f"{_where(entry)} lists it at $0 (entry {entry.name!r}), which for a hosted model is "
        "a placeholder, not a price. Either price it: model_prices: "
        f"{{{model!r}: {{input: 3, output: 15}}}} in the budget (USD per million tokens; "
        "or register_model_price), or, if it really costs nothing, list it as free: "
        f"free_models: [{model!r}]. (strict_prices: false runs it unpriced instead.)"
    )
