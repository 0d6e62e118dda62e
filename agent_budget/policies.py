"""Budget policies as plain data: guards that end a run that is going nowhere, a cheaper model
to move to before the money runs out, and the soft thresholds that warn on the way.

The runtime side lives with the tracker (warnings, spend rate) and with a run (repeated
calls, idle steps, downgrades); here is only what a budget file says and its validation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from agent_budget.units import Count, Money, _Strict

RegimeName = Literal["MEDIUM", "LOW", "CRITICAL"]
_REGIME_FLOOR = {"MEDIUM": 0.7, "LOW": 0.3, "CRITICAL": 0.1}
"""A regime is reached when the fraction left of the tightest limit drops below this."""


class Guards(_Strict):
    """Each guard ends the run the way exhaustion does (``on_exhausted``), with its own reason."""

    repeat_calls: Count | None = None
    """Most times one tool may be called with the same arguments in a run."""
    usd_per_minute: Money | None = None
    """Most USD committed in any 60 seconds; calls beyond it are refused."""
    idle_steps: Count | None = None
    """Most tool steps in a row whose every result was seen before (no new information)."""

    @field_validator("repeat_calls", "idle_steps")
    @classmethod
    def _at_least_one(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1 (leave it unset for no guard)")
        return value


class Downgrade(_Strict):
    """From a regime (or a fraction left) on, model calls go to a cheaper model."""

    model: str
    """Any model string of the model layer: ``local:smollm2-135m``, ``openai/gpt-4.1-nano``..."""
    at: RegimeName | float = "LOW"
    """``"MEDIUM"`` / ``"LOW"`` / ``"CRITICAL"``, or the fraction left (0-1) to switch at."""

    @field_validator("at")
    @classmethod
    def _fraction(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError(f"a fraction left strictly between 0 and 1, got {value}")
        return value

    def active(self, fraction_left: float) -> bool:
        floor = _REGIME_FLOOR[self.at] if isinstance(self.at, str) else self.at
        return fraction_left < floor


def check_warn_at(values: list[float]) -> list[float]:
    """Warn thresholds are fractions of the budget used, each in (0, 1], sorted, unique."""
    for v in values:
        if not 0 < v <= 1:
            raise ValueError(f"warn_at: each threshold is a fraction used in (0, 1], got {v}")
    return sorted(set(values))


def resolve_alias(name: str, aliases: dict[str, str]) -> str:
    """Follow price aliases (``{"my-gpt": "gpt-4o-mini"}``) to the priced name."""
    seen = [name]
    while name in aliases:
        name = aliases[name]
        if name in seen:
            raise ValueError(
                "price_aliases: cycle " + " -> ".join([*seen, name]) + "; an alias must end at a "
                "priced model"
            )
        seen.append(name)
    return name
