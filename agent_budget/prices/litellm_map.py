"""LiteLLM's price maps: the one bundled with the installed package, or a pinned copy.

Costs come from LiteLLM's own cost function (``litellm.cost_per_token`` with the call's
usage details), which knows what a flat per-token price cannot: tiers above a prompt size,
cache reads and writes, reasoning and audio prices, provider quirks. It computes in binary
floats; `to_decimal` turns its answer into the decimal it stands for.

A pinned map is a JSON file in LiteLLM's format (``model_prices_and_context_window.json``,
or a subset of it). Its entries go through the same cost function, handed over as the
model's info, so pinning changes the numbers, never the rules.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent_budget.prices.usage import TokenUsage

# A float carries ~16 significant digits and LiteLLM's sums lose a few ulps; 13 digits
# recover the decimal the sum stands for (0.028750000000000005 -> 0.02875) and stay within
# 5e-13 of LiteLLM's own number when the true sum has more digits than that.
_DIGITS = Context(prec=13, rounding=ROUND_HALF_EVEN)

LOCAL_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "llamafile", "lemonade"})
"""Providers that run the model on the user's own machine: a $0 price there is true."""


def import_litellm() -> Any:
    """Import LiteLLM lazily, with its bundled price map (it would fetch one otherwise)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Otherwise each lookup of a model LiteLLM cannot place prints a banner to stdout.
    litellm.suppress_debug_info = True
    return litellm


@lru_cache(maxsize=1)
def litellm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litellm")
    except PackageNotFoundError:  # pragma: no cover - a vendored litellm
        return "unknown"


def to_decimal(value: float | int | None) -> Decimal:
    """LiteLLM's float cost as the decimal it stands for (see the module docstring)."""
    if not value:
        return Decimal(0)
    return _DIGITS.create_decimal(repr(float(value))).normalize()


@dataclass(frozen=True)
class PriceMap:
    """A pinned price map file: its entries and the version a charge records."""

    path: Path
    sha256: str
    entries: Mapping[str, Mapping[str, Any]] = field(repr=False, compare=False)

    @property
    def origin(self) -> str:
        return f"pricemap:{self.path.name}@{self.sha256[:12]}"


def load_price_map(path: str | os.PathLike[str]) -> PriceMap:
    """Read a price map file; a ValueError says what is wrong with it."""
    p = Path(path).expanduser().resolve()
    try:
        stat = p.stat()
    except OSError:
        raise ValueError(f"{p}: no such price map file") from None
    return _load(p, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int, size: int) -> PriceMap:
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON price map ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(
            f"{path}: a price map is a JSON object of model name -> prices, as in LiteLLM's "
            "model_prices_and_context_window.json"
        )
    entries: dict[str, Mapping[str, Any]] = {}
    for name, entry in data.items():
        if name == "sample_spec" or not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if "cost" in key and isinstance(value, bool | str):
                raise ValueError(f"{path}: {name}.{key}: expected a number, got {value!r}")
            if "cost" in key and isinstance(value, int | float) and value < 0:
                raise ValueError(f"{path}: {name}.{key}: must be >= 0, got {value}")
        entries[name] = entry
    return PriceMap(path, hashlib.sha256(raw).hexdigest(), entries)


@dataclass(frozen=True)
class MapEntry:
    """One model's entry in a LiteLLM price map and how to ask LiteLLM what a call costs."""

    name: str
    """The name LiteLLM prices (its map key, or the name it resolved itself)."""
    info: Mapping[str, Any] = field(repr=False, compare=False)
    origin: str
    """``litellm@<version>`` or ``pricemap:<file>@<sha256 prefix>``: what a charge records."""
    pinned: bool = False

    @property
    def provider(self) -> str | None:
        value = self.info.get("litellm_provider")
        return str(value) if value else None

    @property
    def is_local(self) -> bool:
        # Ollama's "-cloud" models run on Ollama's servers and are not free.
        return self.provider in LOCAL_PROVIDERS and not self.name.endswith("-cloud")

    def rate(self, key: str) -> Decimal | None:
        value = self.info.get(key)
        return None if value is None or isinstance(value, dict | list) else to_decimal(value)

    def cost(self, usage: TokenUsage) -> Decimal:
        """What LiteLLM bills for ``usage``, as an exact Decimal."""
        prompt, completion = self.costs(usage)
        return prompt + completion

    def costs(self, usage: TokenUsage) -> tuple[Decimal, Decimal]:
        """(prompt, completion) USD as LiteLLM's cost function bills them."""
        litellm = import_litellm()
        block = litellm_usage(usage)
        tier = usage.service_tier
        if self.pinned:
            prompt, completion = litellm.cost_per_token(
                model=self.name,
                custom_llm_provider=self.provider,
                usage_object=block,
                service_tier=tier,
                requested_model_info_override={**self.info, "key": self.name},
            )
        else:
            try:
                prompt, completion = litellm.cost_per_token(
                    model=self.name, usage_object=block, service_tier=tier
                )
            except Exception:  # LiteLLM raises plain Exceptions for names it cannot route
                try:
                    prompt, completion = litellm.cost_per_token(
                        model=self.name,
                        custom_llm_provider=self.provider,
                        usage_object=block,
                        service_tier=tier,
                    )
                except Exception as exc:
                    from agent_budget.errors import UnknownPrice

                    # A caller charging a finished call falls back to its reserved worst
                    # case on UnknownPrice rather than losing the reservation.
                    raise UnknownPrice(
                        self.name, hint=f"LiteLLM could not cost the call: {exc}"
                    ) from None
        return to_decimal(prompt), to_decimal(completion)

    def worst_case(
        self, prompt_tokens: int, max_output_tokens: int, service_tier: str | None = None
    ) -> Decimal:
        """The most a call of this size can be billed, at the tier its prompt falls in (and
        at the service tier it asks for): the prompt as plain or as cache-written tokens,
        the output as plain or as reasoning tokens, whichever is dearer. The prompt's and
        the output's costs are apart in LiteLLM's answer, so two calls of its cost function
        find both maxima."""
        plain = self.costs(TokenUsage(prompt_tokens, max_output_tokens, service_tier=service_tier))
        writes = self.info.get("cache_creation_input_token_cost") is not None or any(
            "cache_creation" in k for k in _tier_keys(self.info)
        )
        reasons = any("reasoning" in k for k in self.info) or any(
            "reasoning" in k for k in _tier_keys(self.info)
        )
        if not (writes or reasons):
            return plain[0] + plain[1]
        dear = self.costs(
            TokenUsage(
                prompt_tokens,
                max_output_tokens,
                cache_write=prompt_tokens if writes else 0,
                reasoning=max_output_tokens if reasons else 0,
                service_tier=service_tier,
            )
        )
        return max(plain[0], dear[0]) + max(plain[1], dear[1])

    @property
    def is_zero(self) -> bool:
        """LiteLLM bills $0 for a million tokens in and out (a stub, or a free model)."""
        return _zero(self)


def _tier_keys(info: Mapping[str, Any]) -> list[str]:
    tiers = info.get("tiered_pricing")
    if not isinstance(tiers, list):
        return []
    return [k for tier in tiers if isinstance(tier, dict) for k in tier]


@lru_cache(maxsize=1024)
def _zero(entry: MapEntry) -> bool:
    try:
        return entry.cost(TokenUsage(MILLION_PROBE, MILLION_PROBE)) == 0
    except Exception:  # a cost LiteLLM cannot compute is no price either
        return True


MILLION_PROBE = 1_000_000


def litellm_usage(usage: TokenUsage) -> Any:
    """LiteLLM's ``Usage`` for our counts (OpenAI's shape: prompt tokens include the
    cached and cache-written ones, which LiteLLM then prices apart)."""
    import_litellm()
    from litellm.types.utils import (
        CacheCreationTokenDetails,
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        Usage,
    )

    by_ttl = None
    if usage.cache_write_1h:
        by_ttl = CacheCreationTokenDetails(
            ephemeral_5m_input_tokens=usage.cache_write - usage.cache_write_1h,
            ephemeral_1h_input_tokens=usage.cache_write_1h,
        )
    return Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=usage.cache_read or None,
            cache_creation_tokens=usage.cache_write or None,
            cache_creation_token_details=by_ttl,
            audio_tokens=usage.audio_input or None,
        ),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            reasoning_tokens=usage.reasoning or None,
            audio_tokens=usage.audio_output or None,
        ),
    )


@lru_cache(maxsize=1024)
def bundled_entry(model: str) -> MapEntry | None:
    """The model's entry in the installed LiteLLM's map (a ``provider/`` prefix LiteLLM does
    not know is tried without), or None if LiteLLM does not know the model."""
    litellm = import_litellm()
    origin = f"litellm@{litellm_version()}"
    for name in _candidates(model):
        info = litellm.model_cost.get(name)
        if info is None:
            try:
                found = litellm.get_model_info(name)
            except Exception:  # LiteLLM raises a plain Exception for unknown models
                continue
            info = {k: v for k, v in dict(found).items() if v is not None}
        if _has_prices(info):
            return MapEntry(name, info, origin)
    return None


def pinned_entry(price_map: PriceMap, model: str) -> MapEntry | None:
    for name in _candidates(model):
        info = price_map.entries.get(name)
        if info is not None and _has_prices(info):
            return MapEntry(name, info, price_map.origin, pinned=True)
    return None


def _candidates(model: str) -> list[str]:
    return [model, model.split("/", 1)[1]] if "/" in model else [model]


def _has_prices(info: Mapping[str, Any]) -> bool:
    return any(k in info for k in ("input_cost_per_token", "output_cost_per_token")) or bool(
        info.get("tiered_pricing")
    )
