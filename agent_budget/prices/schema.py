"""`ModelPrice`: a price a user writes down (budget file, `register_model_price`), with the
structure providers bill by, and its exact cost in Decimal.

All prices are USD per million tokens. The billing rules are LiteLLM's (so a price copied
from its map costs the same here as there):

- a prompt longer than a tier's ``above`` is billed entirely at that tier (input, output,
  cache and reasoning prices alike), not only the tokens past the threshold;
- cache reads, cache writes and audio tokens are parts of the prompt, each at its own
  price; what is left is billed at ``input``;
- reasoning and audio tokens are parts of the output, each at its own price;
- a price left out means "the same as": ``cached_input``, ``cache_write`` and
  ``audio_input`` as ``input``; ``cache_write_1h`` as ``cache_write``; ``reasoning`` and
  ``audio_output`` as ``output``; a tier's missing prices as the untiered ones.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from agent_budget.prices.usage import TokenUsage
from agent_budget.units import Count, Money, _Strict

MILLION = 1_000_000

Kind = Literal[
    "input",
    "output",
    "cached_input",
    "cache_write",
    "cache_write_1h",
    "reasoning",
    "audio_input",
    "audio_output",
]
KINDS: tuple[Kind, ...] = (
    "input",
    "output",
    "cached_input",
    "cache_write",
    "cache_write_1h",
    "reasoning",
    "audio_input",
    "audio_output",
)
_SAME_AS: dict[Kind, Kind] = {
    "cached_input": "input",
    "cache_write": "input",
    "audio_input": "input",
    "cache_write_1h": "cache_write",
    "reasoning": "output",
    "audio_output": "output",
}


class _DerivedPrices(_Strict):
    """The prices that default to another one when left out (see the module docstring)."""

    cached_input: Money | None = None
    """Prompt tokens read from the provider's cache."""
    cache_write: Money | None = None
    """Prompt tokens written to the provider's cache (Anthropic: 1.25x input)."""
    cache_write_1h: Money | None = None
    """Prompt tokens written to the cache with a one-hour TTL (Anthropic: 2x input)."""
    reasoning: Money | None = None
    audio_input: Money | None = None
    audio_output: Money | None = None


class PriceTier(_DerivedPrices):
    """Prices for a prompt of more than ``above`` tokens (e.g. Gemini 2.5 Pro above 200k)."""

    above: Count
    """The tier applies when the prompt has more than this many tokens."""
    input: Money | None = None
    output: Money | None = None

    @model_validator(mode="after")
    def _some_price(self) -> PriceTier:
        if all(getattr(self, k) is None for k in KINDS):
            raise ValueError(f"the tier above {self.above} tokens sets no price")
        return self


class ModelPrice(_DerivedPrices):
    """A model's price in USD per million tokens (the unit provider price pages use).

    >>> ModelPrice(input=1.25, output=10, cached_input=0.125,
    ...            tiers=[{"above": 200_000, "input": 2.5, "output": 15}])
    """

    input: Money
    output: Money
    tiers: list[PriceTier] = Field(default_factory=list)
    """Prices for longer prompts, by ascending ``above``."""
    _rate_rows: dict[int, dict[Kind, Decimal]] = PrivateAttr(default_factory=dict)
    """Per-token rates by tier index (-1: untiered), filled on first use: every model call
    of a run is priced twice (worst case, then actual), and resolving each rate through
    the tiers and the "same as" chain was a measurable share of a budgeted step."""

    @model_validator(mode="after")
    def _ascending_tiers(self) -> ModelPrice:
        thresholds = [t.above for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError(
                f"tiers must have strictly ascending 'above' thresholds, got {thresholds}"
            )
        return self

    # --- the per-token view the rest of the code uses ------------------------------------

    @property
    def input_per_token(self) -> Decimal:
        return self.input / MILLION

    @property
    def output_per_token(self) -> Decimal:
        return self.output / MILLION

    @property
    def cached_input_per_token(self) -> Decimal | None:
        return None if self.cached_input is None else self.cached_input / MILLION

    @property
    def is_free(self) -> bool:
        """Every token of every kind costs $0 (a price, not a missing one)."""
        prices = [getattr(self, k) for k in KINDS]
        prices += [getattr(t, k) for t in self.tiers for k in KINDS]
        return all(p is None or p == 0 for p in prices)

    def tier_for(self, prompt_tokens: int) -> PriceTier | None:
        """The tier a prompt of this many tokens is billed at (None: the base prices)."""
        chosen = None
        for tier in self.tiers:
            if prompt_tokens > tier.above:
                chosen = tier
        return chosen

    def rate(self, kind: Kind, prompt_tokens: int = 0) -> Decimal:
        """USD per token of ``kind`` for a prompt of ``prompt_tokens`` tokens."""
        return self._rates(prompt_tokens)[kind]

    def _rates(self, prompt_tokens: int) -> dict[Kind, Decimal]:
        index = -1
        for i, tier in enumerate(self.tiers):
            if prompt_tokens > tier.above:
                index = i
        rows = self.__pydantic_private__["_rate_rows"]  # type: ignore[index]  # no __getattr__ hop
        row = rows.get(index)
        if row is None:
            billed = self.tiers[index] if index >= 0 else None
            row = rows[index] = {k: self._resolve_rate(k, billed) for k in KINDS}
        return row

    def _resolve_rate(self, kind: Kind, tier: PriceTier | None) -> Decimal:
        k: Kind | None = kind
        while k is not None:
            value = getattr(tier, k) if tier is not None else None
            if value is None:
                value = getattr(self, k)
            if value is not None:
                return Decimal(value) / MILLION
            k = _SAME_AS.get(k)
        raise AssertionError("input and output are always set")  # pragma: no cover

    # --- cost -------------------------------------------------------------------------------

    def cost(self, usage: TokenUsage) -> Decimal:
        """The exact USD of one call."""
        p = usage.input_tokens
        r = self._rates(p)
        plain_write = usage.cache_write - usage.cache_write_1h
        text_in = max(p - usage.cache_read - usage.cache_write - usage.audio_input, 0)
        text_out = max(usage.output_tokens - usage.reasoning - usage.audio_output, 0)
        return (
            text_in * r["input"]
            + usage.cache_read * r["cached_input"]
            + plain_write * r["cache_write"]
            + usage.cache_write_1h * r["cache_write_1h"]
            + usage.audio_input * r["audio_input"]
            + text_out * r["output"]
            + usage.reasoning * r["reasoning"]
            + usage.audio_output * r["audio_output"]
        )

    def worst_case(self, prompt_tokens: int, max_output_tokens: int) -> Decimal:
        """The most a call of this size can cost: every prompt token at the dearest of a
        plain, a cached and a cache-written token, every output token at the dearer of a
        plain and a reasoning token, all at the tier the prompt falls in."""
        r = self._rates(prompt_tokens)
        per_in = max(r["input"], r["cached_input"], r["cache_write"])
        per_out = max(r["output"], r["reasoning"])
        return prompt_tokens * per_in + max_output_tokens * per_out
