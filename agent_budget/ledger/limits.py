"""Shared limits, bound to a user / tenant / everyone: what counts against them, what is
left (`Headroom`), and why a charge does not fit (`refusal`). Money is integer billionths
of a dollar (`to_nanos`), so every sum is exact in both databases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from agent_budget.errors import BudgetExceeded, InvalidBudget
from agent_budget.ledger import sql as q
from agent_budget.tracker import Charge

NANOS = 10**9


def to_nanos(usd: Decimal, *, up: bool = True) -> int:
    """USD as integer billionths. Costs round up, so the ledger never under-counts."""
    scaled = Decimal(usd) * NANOS
    return int(scaled.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))


def from_nanos(nanos: int | Decimal) -> Decimal:
    """Exact USD from billionths, with trailing zeros trimmed (at least two decimals)."""
    value = Decimal(int(nanos)).scaleb(-9).normalize()
    return value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value  # type: ignore[operator]


@dataclass(frozen=True)
class ScopedLimit:
    """A `SharedLimit` bound to one user / tenant (or to everyone, ``key=None``)."""

    scope: str
    key: str | None
    window: str | None
    usd_nanos: int | None = None
    total_tokens: int | None = None
    model_calls: int | None = None
    total_tool_calls: int | None = None

    @property
    def lock_key(self) -> str:
        return f"{self.scope}:{self.key or ''}"

    def describe(self) -> str:
        who = "everyone" if self.scope == "global" else f"{self.scope} {self.key!r}"
        return f"{who} ({'all time' if self.window is None else self.window})"


@dataclass(frozen=True)
class Used:
    """What counts against a scoped limit right now (committed + live reservations)."""

    usd_nanos: int
    tokens: int
    model_calls: int
    tool_calls: int


@dataclass(frozen=True)
class LimitHeadroom:
    """One shared limit now: what counts against it and what is left (None: no limit)."""

    limit: ScopedLimit
    used: Used
    usd: Decimal | None
    tokens: int | None
    model_calls: int | None
    tool_calls: int | None


@dataclass(frozen=True)
class Headroom:
    """What is left of a set of shared limits (the tightest of them), read without
    reserving: size a retry or the final answer's ``max_tokens`` with it."""

    limits: tuple[LimitHeadroom, ...]

    def _least(self, name: str) -> Any:
        values = [getattr(h, name) for h in self.limits if getattr(h, name) is not None]
        return min(values) if values else None

    @property
    def usd(self) -> Decimal | None:
        return self._least("usd")

    @property
    def tokens(self) -> int | None:
        return self._least("tokens")

    @property
    def model_calls(self) -> int | None:
        return self._least("model_calls")

    @property
    def tool_calls(self) -> int | None:
        return self._least("tool_calls")

    def fits(self, charge: Charge) -> bool:
        """Whether ``charge`` fits every limit now (a reservation may still lose a race)."""
        return all(refusal(h.limit, h.used, charge) is None for h in self.limits)


def refusal(lim: ScopedLimit, used: Used, c: Charge) -> BudgetExceeded | None:
    """Why ``c`` does not fit ``lim`` given what counts against it (None: it fits). The same
    test as `agent_budget.ledger.sql.REFUSED`, which the databases run."""
    want = to_nanos(c.usd)
    who = lim.describe()
    if lim.usd_nanos is not None and used.usd_nanos + want > lim.usd_nanos:
        return BudgetExceeded(
            f"{lim.scope}.usd",
            from_nanos(want),
            from_nanos(max(lim.usd_nanos - used.usd_nanos, 0)),
            from_nanos(used.usd_nanos),
            from_nanos(lim.usd_nanos),
            detail=(
                f"The limit is shared by all runs of {who}. Wait for the window to move "
                "on, or raise the shared limit."
            ),
        )
    tokens = c.input_tokens + c.output_tokens
    for name, limit, have, want_n in (
        ("total_tokens", lim.total_tokens, used.tokens, tokens),
        ("model_calls", lim.model_calls, used.model_calls, int(c.kind == "model")),
        ("total_tool_calls", lim.total_tool_calls, used.tool_calls, int(c.kind == "tool")),
    ):
        if limit is not None and want_n and have + want_n > limit:
            return BudgetExceeded(
                f"{lim.scope}.{name}",
                want_n,
                max(limit - have, 0),
                have,
                limit,
                detail=f"The limit is shared by all runs of {who}.",
            )
    return None


def want_params(c: Charge) -> dict[str, int]:
    return {
        "wu": to_nanos(c.usd),
        "wt": c.input_tokens + c.output_tokens,
        "wm": int(c.kind == "model"),
        "wc": int(c.kind == "tool"),
    }


def limit_params(limits: Sequence[ScopedLimit], now: int) -> dict[str, Any]:
    """The named parameters of `sql.check_query` for ``limits`` at ``now``."""
    params: dict[str, Any] = {"now": now}
    for i, lim in enumerate(limits):
        counted_from, ranges = q.bucket_ranges(lim.window, now, field=f"{lim.scope} window")
        params[f"k{i}"] = "" if lim.scope == "global" else lim.key
        params[f"from{i}"] = counted_from
        for j, (span, lo, hi) in enumerate(ranges):
            params[f"s{i}_{j}"], params[f"lo{i}_{j}"], params[f"hi{i}_{j}"] = span, lo, hi
        params[f"lu{i}"] = lim.usd_nanos
        params[f"lt{i}"] = lim.total_tokens
        params[f"lm{i}"] = lim.model_calls
        params[f"lc{i}"] = lim.total_tool_calls
    return params


def check_limits(limits: Sequence[ScopedLimit]) -> None:
    for lim in limits:
        if lim.scope not in ("user", "tenant", "global"):
            raise InvalidBudget(f"shared limit scope {lim.scope!r}: use user, tenant or global")
        if lim.scope != "global" and lim.key is None:
            raise InvalidBudget(f"a {lim.scope}-scoped limit needs the {lim.scope}'s id (key)")
