"""`TokenUsage`: the tokens one model call used, with the details prices depend on.

Counts follow LangChain's ``usage_metadata``: ``input_tokens`` counts every prompt token,
cached and cache-written ones included, and ``output_tokens`` every output token, reasoning
and audio included; the details say how many of them were of each kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one model call. Details are subsets of ``input_tokens`` / ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    """Prompt tokens read from the provider's prompt cache."""
    cache_write: int = 0
    """Prompt tokens written to the provider's prompt cache (all TTLs)."""
    cache_write_1h: int = 0
    """Of ``cache_write``, those written with a one-hour TTL (Anthropic bills them higher)."""
    audio_input: int = 0
    reasoning: int = 0
    audio_output: int = 0
    service_tier: str | None = None
    """The provider's service tier the call ran at, as reported (OpenAI's ``priority`` and
    ``flex``, Gemini's): LiteLLM prices those apart. Prices written by the user ignore it."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name == "service_tier":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TokenUsage.{name} must be a whole number >= 0, got {value!r}")

    @classmethod
    def from_usage_metadata(
        cls, usage: Mapping[str, Any], *, service_tier: Any = None
    ) -> TokenUsage:
        """From a LangChain ``AIMessage.usage_metadata`` (``input_token_details``:
        ``cache_read``, ``cache_creation``, ``audio``, Anthropic's
        ``ephemeral_1h_input_tokens``; ``output_token_details``: ``reasoning``, ``audio``)."""
        inp = usage.get("input_token_details") or {}
        out = usage.get("output_token_details") or {}
        tier = service_tier if isinstance(service_tier, str) and service_tier else None
        if not inp and not out:  # the usual report: plain counts (read once per call)
            i, o = usage.get("input_tokens"), usage.get("output_tokens")
            if type(i) is int and type(o) is int and i >= 0 and o >= 0:
                return cls(input_tokens=i, output_tokens=o, service_tier=tier)

        def n(details: Mapping[str, Any], key: str) -> int:
            value = details.get(key)
            return int(value) if isinstance(value, int | float) and value > 0 else 0

        write = n(inp, "cache_creation")
        return cls(
            input_tokens=n(usage, "input_tokens"),
            output_tokens=n(usage, "output_tokens"),
            cache_read=n(inp, "cache_read"),
            cache_write=write,
            cache_write_1h=min(n(inp, "ephemeral_1h_input_tokens"), write),
            audio_input=n(inp, "audio"),
            reasoning=n(out, "reasoning"),
            audio_output=n(out, "audio"),
            service_tier=tier,
        )

    @property
    def details(self) -> dict[str, int]:
        """The non-zero details, for a charge's record."""
        names = ("cache_read", "cache_write", "cache_write_1h", "audio_input", "reasoning")
        return {k: getattr(self, k) for k in (*names, "audio_output") if getattr(self, k)}


def usage_details(usage: Any) -> dict[str, Any]:
    """LangChain's ``input_token_details`` / ``output_token_details`` from a LiteLLM usage
    block: cache reads and writes, audio and reasoning tokens are priced apart."""
    if usage is None:
        return {}
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)

    def n(obj: Any, *names: str) -> int:
        for name in names:
            value = getattr(obj, name, None) if obj is not None else None
            if isinstance(value, int) and value > 0:
                return value
        return 0

    inp = {
        "cache_read": n(prompt, "cached_tokens") or n(usage, "cache_read_input_tokens"),
        "cache_creation": n(prompt, "cache_creation_tokens", "cache_write_tokens")
        or n(usage, "cache_creation_input_tokens"),
        "audio": n(prompt, "audio_tokens"),
    }
    out = {"reasoning": n(completion, "reasoning_tokens"), "audio": n(completion, "audio_tokens")}
    details: dict[str, Any] = {}
    if any(inp.values()):
        details["input_token_details"] = {k: v for k, v in inp.items() if v}
    if any(out.values()):
        details["output_token_details"] = {k: v for k, v in out.items() if v}
    return details
